/**
 * The playground page: plain HTML, CSS and script in one string (no framework, no request for assets),
 * served by `playground.ts`. It reads `/actions`, connects to this host's WebSocket path, and shows each
 * reply with its round-trip time, matched to its request by `req_id`. A subscription's frames (those with
 * `subscription.id`) update one card per subscription as they come, with a frame count and a Forget button
 * that sends `{"forget": id}`. Everything it shows from the network is written with `textContent`, never
 * as HTML.
 */
export const PLAYGROUND_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edge-wsproxy playground</title>
<style>
:root { color-scheme: light dark; --bg: #f6f7f9; --panel: #ffffff; --text: #1d2127; --muted: #6b7380;
  --line: #dde1e6; --accent: #2f6fdb; --on-accent: #ffffff; --ok: #1f8a4c; --err: #c93535; --err-bg: #fdf1f1; --code: #f0f2f5; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #15181d; --panel: #1c2027; --text: #e3e6ea; --muted: #8d95a1; --line: #2c323b;
    --accent: #6d9cf0; --on-accent: #0e1522; --ok: #4cc38a; --err: #f07070; --err-bg: #2a1b1d; --code: #232830; }
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--text); }
header { display: flex; align-items: center; gap: 12px; padding: 10px 16px; border-bottom: 1px solid var(--line); background: var(--panel); flex-wrap: wrap; }
h1 { font-size: 15px; margin: 0; font-weight: 600; }
code, pre, textarea, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
#url { color: var(--muted); }
#status { padding: 2px 10px; border-radius: 999px; font-size: 12px; border: 1px solid var(--line); }
#status[data-state="open"] { color: var(--ok); border-color: var(--ok); }
#status[data-state="closed"] { color: var(--err); border-color: var(--err); }
button { font: inherit; padding: 5px 12px; border-radius: 6px; border: 1px solid var(--line); background: var(--panel); color: var(--text); cursor: pointer; }
button.primary { background: var(--accent); border-color: var(--accent); color: var(--on-accent); font-weight: 600; }
button:disabled { opacity: .5; cursor: default; }
.spacer { flex: 1; }
main { display: grid; grid-template-columns: minmax(300px, 2fr) 3fr; gap: 12px; padding: 12px 16px; height: calc(100vh - 52px - 190px); min-height: 360px; }
section { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; display: flex; flex-direction: column; min-height: 0; }
section > h2 { font-size: 12px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: 0; padding: 8px 12px; border-bottom: 1px solid var(--line); display: flex; align-items: center; gap: 8px; }
#actions { display: flex; flex-wrap: wrap; gap: 6px; padding: 10px 12px; border-bottom: 1px solid var(--line); }
#actions button { padding: 2px 10px; font-size: 13px; }
#actions button[aria-pressed="true"] { border-color: var(--accent); color: var(--accent); }
#editor { flex: 1; margin: 0; border: 0; padding: 10px 12px; resize: none; background: var(--code); color: var(--text); outline: none; min-height: 120px; }
.bar label, .bar .hint { white-space: nowrap; }
.bar .hint { overflow: hidden; text-overflow: ellipsis; }
.bar { display: flex; align-items: center; gap: 10px; padding: 8px 12px; border-top: 1px solid var(--line); color: var(--muted); font-size: 12px; }
#replies { overflow: auto; padding: 8px 12px; flex: 1; }
.reply { border: 1px solid var(--line); border-left: 3px solid var(--ok); border-radius: 6px; margin-bottom: 8px; }
.reply.error { border-left-color: var(--err); background: var(--err-bg); }
.reply .meta { display: flex; gap: 12px; padding: 4px 10px; font-size: 12px; color: var(--muted); border-bottom: 1px solid var(--line); }
.reply .meta .type { color: var(--text); font-weight: 600; }
.reply.error .meta .type, .reply .meta .code { color: var(--err); }
.reply .meta .forget { margin-left: auto; padding: 0 8px; font-size: 12px; }
.reply.ended { opacity: .6; }
.reply pre { margin: 0; padding: 6px 10px; white-space: pre-wrap; word-break: break-word; max-height: 260px; overflow: auto; }
#log-panel { margin: 0 16px 12px; height: 166px; }
#log { overflow: auto; padding: 6px 12px; flex: 1; margin: 0; white-space: pre-wrap; color: var(--muted); }
#log .sent { color: var(--text); }
#log .error { color: var(--err); }
.empty { color: var(--muted); padding: 8px 0; }
@media (max-width: 760px) { main { grid-template-columns: 1fr; height: auto; } #editor { min-height: 160px; } #replies { max-height: 50vh; } }
</style>
</head>
<body>
<header>
  <h1>edge-wsproxy playground</h1>
  <code id="url"></code>
  <span id="status" data-state="connecting">connecting</span>
  <span class="spacer"></span>
  <button id="connect" type="button">Disconnect</button>
</header>
<main>
  <section aria-label="Request">
    <h2>Request</h2>
    <div id="actions"><span class="empty">loading actions...</span></div>
    <textarea id="editor" spellcheck="false" aria-label="Request JSON">{"ping": 1}</textarea>
    <div class="bar">
      <button id="send" class="primary" type="button" disabled>Send</button>
      <label><input id="auto-id" type="checkbox" checked> add req_id</label>
      <span class="spacer"></span>
      <span class="hint">Ctrl+Enter sends &middot; non-JSON text goes as is</span>
    </div>
  </section>
  <section aria-label="Replies">
    <h2>Replies <span class="spacer"></span><button id="clear" type="button">Clear</button></h2>
    <div id="replies"><div class="empty">Replies appear here, newest first.</div></div>
  </section>
</main>
<section id="log-panel" aria-label="Session log">
  <h2>Session log</h2>
  <pre id="log"></pre>
</section>
<script>
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var basePath = "/websockets/v3";
  var socket = null;
  var wanted = true;
  var nextReqId = 1;
  var waiting = new Map();
  var unnumbered = [];
  var subscriptions = new Map();

  function wsUrl() {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + basePath;
  }
  function clock() { return new Date().toISOString().slice(11, 23); }
  function log(text, kind) {
    var line = document.createElement("div");
    line.textContent = clock() + "  " + text;
    if (kind) line.className = kind;
    $("log").appendChild(line);
    $("log").scrollTop = $("log").scrollHeight;
  }
  function setStatus(state) {
    $("status").dataset.state = state;
    $("status").textContent = state;
    $("send").disabled = state !== "open";
    $("connect").textContent = state === "closed" ? "Reconnect" : "Disconnect";
  }

  function connect() {
    wanted = true;
    $("url").textContent = wsUrl();
    setStatus("connecting");
    log("connecting to " + wsUrl());
    var ws = new WebSocket(wsUrl());
    socket = ws;
    ws.onopen = function () { if (socket === ws) { setStatus("open"); log("connected"); } };
    ws.onclose = function (event) {
      if (socket !== ws) return;
      setStatus("closed");
      log("closed: code " + event.code + (event.reason ? " (" + event.reason + ")" : ""), wanted ? "error" : "");
      waiting.clear();
      unnumbered = [];
      subscriptions.forEach(function (_, id) { endSubscription(id); });
    };
    ws.onerror = function () { if (socket === ws) log("WebSocket error", "error"); };
    ws.onmessage = function (event) { showReply(String(event.data)); };
  }

  function send(override) {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    var text = typeof override === "string" ? override : $("editor").value;
    var frame;
    try { frame = JSON.parse(text); } catch (e) { frame = undefined; }
    var now = performance.now();
    if (frame && typeof frame === "object" && !Array.isArray(frame)) {
      if ($("auto-id").checked && frame.req_id === undefined) frame.req_id = nextReqId++;
      text = JSON.stringify(frame);
      if (frame.req_id !== undefined) waiting.set(String(frame.req_id), now);
      else unnumbered.push(now);
      log("sent " + text, "sent");
    } else {
      unnumbered.push(now);
      log("sent as is (not a JSON object): " + text, "sent");
    }
    socket.send(text);
  }

  function subscriptionIdOf(reply) {
    var sub = reply && reply.subscription;
    return sub && typeof sub === "object" && typeof sub.id === "string" ? sub.id : undefined;
  }

  /** A later frame of a known subscription: update its card in place rather than add one per frame. */
  function showStreamed(id, reply) {
    var entry = subscriptions.get(id);
    if (entry.ended) return;
    entry.frames += 1;
    entry.count.textContent = entry.frames + " frames";
    entry.body.textContent = JSON.stringify(reply, null, 2);
  }

  function endSubscription(id) {
    var entry = subscriptions.get(id);
    if (!entry || entry.ended) return;
    entry.ended = true;
    entry.card.classList.add("ended");
    entry.forget.disabled = true;
    entry.count.textContent = entry.frames + " frames, ended";
  }

  function showReply(text) {
    var now = performance.now();
    var reply;
    try { reply = JSON.parse(text); } catch (e) { reply = { unparsed: text }; }
    var subId = subscriptionIdOf(reply);
    if (subId !== undefined && subscriptions.has(subId)) { showStreamed(subId, reply); return; }
    if (reply && reply.msg_type === "forget_all" && Array.isArray(reply.forget_all)) reply.forget_all.forEach(function (id) { endSubscription(String(id)); });
    var sentAt;
    var key = reply && reply.req_id !== undefined ? String(reply.req_id) : undefined;
    if (key !== undefined && waiting.has(key)) { sentAt = waiting.get(key); waiting.delete(key); }
    else if (key === undefined) sentAt = unnumbered.shift();
    var error = reply && reply.error && typeof reply.error === "object" ? reply.error : null;
    var card = document.createElement("div");
    card.className = "reply" + (error ? " error" : "");
    var meta = document.createElement("div");
    meta.className = "meta mono";
    var add = function (cls, value) {
      var span = document.createElement("span");
      span.className = cls;
      span.textContent = value;
      meta.appendChild(span);
    };
    add("type", String(reply && reply.msg_type !== undefined ? reply.msg_type : "?"));
    if (error) add("code", String(error.code));
    add("req", key !== undefined ? "req_id " + key : "no req_id");
    add("rtt", sentAt !== undefined ? (now - sentAt).toFixed(1) + " ms" : "unmatched");
    var body = document.createElement("pre");
    body.textContent = JSON.stringify(reply, null, 2);
    if (subId !== undefined && !error) {
      add("sub", "subscription " + subId);
      var count = document.createElement("span");
      count.className = "frames";
      count.textContent = "1 frames";
      meta.appendChild(count);
      var forget = document.createElement("button");
      forget.type = "button";
      forget.className = "forget";
      forget.textContent = "Forget";
      forget.onclick = function () { send(JSON.stringify({ forget: subId })); endSubscription(subId); };
      meta.appendChild(forget);
      subscriptions.set(subId, { card: card, body: body, count: count, forget: forget, frames: 1, ended: false });
    }
    card.appendChild(meta);
    card.appendChild(body);
    var list = $("replies");
    var empty = list.querySelector(".empty");
    if (empty) empty.remove();
    list.insertBefore(card, list.firstChild);
    var rtt = sentAt !== undefined ? ", " + (now - sentAt).toFixed(1) + " ms" : "";
    log("received " + (reply && reply.msg_type) + (error ? " [" + error.code + "]" : "") + (key !== undefined ? " req_id " + key : "") + rtt, error ? "error" : "");
  }

  function showActions(actions) {
    var box = $("actions");
    box.textContent = "";
    actions.forEach(function (action) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = action.name;
      button.title = "msg_type " + action.msgType;
      button.setAttribute("aria-pressed", "false");
      button.onclick = function () {
        box.querySelectorAll("button").forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
        button.setAttribute("aria-pressed", "true");
        $("editor").value = JSON.stringify(action.example, null, 2);
        $("editor").focus();
      };
      box.appendChild(button);
    });
  }

  $("send").onclick = function () { send(); };
  $("editor").addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); send(); }
  });
  $("connect").onclick = function () {
    if (socket && socket.readyState <= WebSocket.OPEN) { wanted = false; socket.close(1000); }
    else connect();
  };
  $("clear").onclick = function () {
    $("replies").textContent = "";
    // A live subscription's next frame starts a new card; ended ones stay known so late frames are ignored.
    subscriptions.forEach(function (entry, id) { if (!entry.ended) subscriptions.delete(id); });
  };

  fetch("/actions").then(function (response) {
    if (!response.ok) throw new Error("HTTP " + response.status);
    return response.json();
  }).then(function (body) {
    basePath = body.basePath || basePath;
    showActions(body.actions || []);
  }).catch(function (error) {
    $("actions").textContent = "";
    log("could not load /actions: " + error.message, "error");
  }).then(connect);
})();
</script>
</body>
</html>
`;
