/**
 * The push API of the Worker (docs/push.md): services send frames to a connection with the push URL they
 * got with its request, and the Worker routes each to the object named in the reference, over Durable
 * Object RPC (which wakes a hibernated object). No Redis command is involved.
 *
 * - `POST /connections/<ref>/messages`, body `{"subscription", "data"}` or `{"frame"}`: the status is the
 *   answer (202 sent, 400, 401, 404, 410, 413), with a JSON body `{"status", "error"?}`.
 * - `POST /connections/messages`, body `{"messages": [{"connection": <push URL or ref>, ...}, ...]}`: 200
 *   with `{"results": [{"status"}, ...]}` in order.
 */
import type { Context, Hono } from "hono";
import { parsePushMessage, type PushStatus } from "../core/subscriptions.js";
import { isJsonObject } from "../core/safe-object.js";
import type { GatewayEnv } from "./config.js";
import { CONFIG_ERROR_TEXT, type ConfigErrorReporter } from "./config-errors.js";
import type { GatewayDurableObject, PushDelivery } from "./gateway-object.js";
import { createJsonLogger } from "./log.js";
import { configuredSecrets, gatewayPlan, type CompiledGateway, type PushSettings } from "./plan.js";
import { parseRef, secretsEqual } from "./push-ref.js";

type PushContext = Context<{ Bindings: GatewayEnv }>;
type ObjectStub = DurableObjectStub<GatewayDurableObject>;
/** A push's status: the object's, or 401/503 from the Worker. */
type PushAnswer = PushStatus | 401 | 503;

/** What a push answers when the Worker cannot say more: the same text for every kind of 404. */
const ERRORS: Record<number, string> = {
  401: "a valid authorization: Bearer <push secret> header is required",
  404: "no such connection",
  410: "the connection is closed or the subscription is gone",
  413: "too large",
  503: "the connection's Durable Object could not be reached; try again",
};

/**
 * Mounts the push routes on the Worker's app (only when push is on). A configuration error is logged
 * through `reportConfigError` (once, redacted) and answered with a generic 500.
 */
export function mountPush(
  app: Hono<{ Bindings: GatewayEnv }>,
  gateway: CompiledGateway,
  push: PushSettings,
  reportConfigError: ConfigErrorReporter,
) {
  const refuse = (c: PushContext) => refusePush(c, gateway, reportConfigError);
  const bindingMissing = (c: PushContext) => {
    reportConfigError(
      `Durable Object binding "${gateway.binding}" is missing: add it to wrangler.toml`,
      c.env,
    );
    return c.json({ status: 500, error: CONFIG_ERROR_TEXT }, 500);
  };
  app.post("/connections/messages", async (c) => {
    const refused = refuse(c);
    if (refused) return refused;
    const body = await readBody(c, push);
    if (body instanceof RefusedBody)
      return answer(c, body.status, body.status === 400 ? "the body is not JSON" : undefined);
    if (!isJsonObject(body) || !Array.isArray(body.messages)) {
      return answer(c, 400, 'the body must be {"messages": [...]}');
    }
    if (body.messages.length > push.maxBatch) {
      return answer(c, 413, `at most ${push.maxBatch} messages per batch (maxPushBatch)`);
    }
    const namespace = namespaceOf(c, gateway);
    if (!namespace) return bindingMissing(c);
    const results: PushAnswer[] = new Array<PushAnswer>(body.messages.length).fill(400);
    const byObject = new Map<string, { index: number; delivery: PushDelivery }[]>();
    body.messages.forEach((item: unknown, index) => {
      const ref =
        isJsonObject(item) && typeof item.connection === "string" ? parseRef(item.connection) : undefined;
      const { connection: _connection, ...rest } = isJsonObject(item) ? item : {};
      const message = parsePushMessage(rest);
      if (!ref) results[index] = isJsonObject(item) && typeof item.connection === "string" ? 404 : 400;
      else if (typeof message !== "string") {
        const group = byObject.get(ref.objectName) ?? [];
        group.push({ index, delivery: { connectionId: ref.connectionId, secret: ref.secret, message } });
        byObject.set(ref.objectName, group);
      }
    });
    await Promise.all(
      [...byObject].map(async ([objectName, group]) => {
        const statuses = await deliver(
          c.env,
          namespace,
          objectName,
          group.map((entry) => entry.delivery),
        );
        group.forEach((entry, i) => (results[entry.index] = statuses[i] ?? 404));
      }),
    );
    return c.json({ results: results.map((status) => ({ status })) }, 200);
  });

  app.post("/connections/:ref/messages", async (c) => {
    const refused = refuse(c);
    if (refused) return refused;
    const ref = parseRef(c.req.param("ref"));
    if (!ref) return answer(c, 404);
    const body = await readBody(c, push);
    if (body instanceof RefusedBody)
      return answer(c, body.status, body.status === 400 ? "the body is not JSON" : undefined);
    const message = parsePushMessage(body);
    if (typeof message === "string") return answer(c, 400, message);
    const namespace = namespaceOf(c, gateway);
    if (!namespace) return bindingMissing(c);
    const delivery = { connectionId: ref.connectionId, secret: ref.secret, message };
    const [status = 404] = await deliver(c.env, namespace, ref.objectName, [delivery]);
    return answer(c, status);
  });
}

/** 401 when a push secret is configured and the request does not carry it; 500 for a broken configuration. */
function refusePush(
  c: PushContext,
  gateway: CompiledGateway,
  reportConfigError: ConfigErrorReporter,
): Response | undefined {
  let secret: string | undefined;
  try {
    secret = gatewayPlan(gateway, c.env).pushSecret;
  } catch (error) {
    reportConfigError(error instanceof Error ? error.message : String(error), c.env);
    return c.json({ status: 500, error: CONFIG_ERROR_TEXT }, 500);
  }
  if (secret === undefined) return undefined;
  const given = /^Bearer (.+)$/i.exec(c.req.header("authorization") ?? "")?.[1] ?? "";
  return secretsEqual(given, secret) ? undefined : answer(c, 401);
}

/** A body refused before it is parsed: over `maxPushBodyBytes` (413) or not JSON (400). */
class RefusedBody {
  constructor(readonly status: 400 | 413) {}
}

/** The JSON body, or why it is refused. */
async function readBody(c: PushContext, push: PushSettings): Promise<unknown> {
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > push.maxBodyBytes) return new RefusedBody(413);
  const bytes = await c.req.arrayBuffer();
  if (bytes.byteLength > push.maxBodyBytes) return new RefusedBody(413);
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as unknown;
  } catch {
    // Not JSON: the pusher gets 400.
    return new RefusedBody(400);
  }
}

/** Sends `deliveries` to one object; when it cannot be reached each gets 503 (the pusher may retry). */
async function deliver(
  env: GatewayEnv,
  namespace: DurableObjectNamespace<GatewayDurableObject>,
  objectName: string,
  deliveries: PushDelivery[],
): Promise<PushAnswer[]> {
  const stub: ObjectStub = namespace.get(namespace.idFromName(objectName));
  try {
    return await stub.pushMessages(deliveries);
  } catch (error) {
    // Redacted like every other line: the error text is not ours and could quote a configured secret.
    createJsonLogger("error", configuredSecrets(env, {})).error(`push to object ${objectName} failed`, error);
    return deliveries.map(() => 503);
  }
}

function namespaceOf(c: PushContext, gateway: CompiledGateway) {
  const namespace = c.env[gateway.binding] as DurableObjectNamespace<GatewayDurableObject> | undefined;
  return namespace && typeof namespace.idFromName === "function" ? namespace : undefined;
}

function answer(c: PushContext, status: PushAnswer, error?: string): Response {
  const text = error ?? ERRORS[status];
  return c.json(text ? { status, error: text } : { status }, status);
}
