/**
 * Test helpers for the service SDK: a private redis-server (and REST bridge), a stand-in for the gateway
 * that writes entries with the gateway's own wire code and reads the replies, and waiting helpers.
 */
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { startBridge, type RunningBridge } from "../../src/bridge/server.js";
import { startRedis, type ManagedRedis } from "../../src/devstack/redis.js";
import { createNativeTransport } from "../../src/consumer/native-transport.js";
import type { PipelineResult, ServiceTransport, WriteCommand } from "../../src/consumer/transport.js";
import {
  createRpcService,
  type LogEntry,
  type RpcService,
  type RpcServiceOptions,
} from "../../src/consumer/index.js";
import { entryFields, parseReply, type StreamEntry } from "../../src/wire/index.js";
import { waitFor } from "../support/wait.js";

/** The transports every behaviour test runs against. */
export const TRANSPORTS = ["native", "rest"] as const;
export type TransportKind = (typeof TRANSPORTS)[number];

const BRIDGE_TOKEN = "consumer-test-token";

/** A private redis-server, a REST bridge in front of it, and a plain client for the test's own commands. */
export interface TestRedis {
  server: ManagedRedis;
  bridge: RunningBridge;
  client: Redis;
  /** The `redis` option for a service on `kind`. */
  redisOption(kind: TransportKind): RpcServiceOptions["redis"];
  stop(): Promise<void>;
}

/**
 * A Redis ACL user of its own, password "right" (every key, channel and command), and the URL that logs in
 * as it with `password`. `revoke()` changes the password and kills the user's connections, so they must log
 * in again and are refused; `restore()` gives the old password back; `remove()` deletes the user.
 */
export async function aclUser(redis: TestRedis, password = "right") {
  const user = `svc${randomUUID().slice(0, 8)}`;
  await redis.client.call("ACL", "SETUSER", user, "on", ">right", "~*", "&*", "+@all");
  const url = new URL(redis.server.url);
  url.username = user;
  url.password = password;
  return {
    user,
    url: url.toString(),
    async revoke(): Promise<void> {
      await redis.client.call("ACL", "SETUSER", user, "resetpass", ">changed");
      await redis.client.call("CLIENT", "KILL", "USER", user);
    },
    async restore(): Promise<void> {
      await redis.client.call("ACL", "SETUSER", user, ">right");
    },
    async remove(): Promise<void> {
      await redis.client.call("ACL", "DELUSER", user);
    },
  };
}

/** Starts redis-server and the bridge. */
export async function startTestRedis(): Promise<TestRedis> {
  const server = await startRedis();
  const bridge = await startBridge({ redisUrl: server.url, port: 0, token: BRIDGE_TOKEN });
  const client = new Redis(server.url, { maxRetriesPerRequest: 1 });
  client.on("error", () => {});
  return {
    server,
    bridge,
    client,
    redisOption: (kind) =>
      kind === "native" ? server.url : { restUrl: bridge.url, restToken: BRIDGE_TOKEN },
    async stop() {
      client.disconnect();
      await bridge.close();
      await server.stop();
    },
  };
}

/** A reply as the gateway would read it from the reply list. */
export interface ReplyPayload {
  message_id: string;
  response: { result?: unknown; timestamp?: number; error?: unknown };
}

/**
 * Plays the gateway's part with the gateway's own wire code: XADDs entries built by `entryFields` (the
 * fields the consumer-groups backend sends, in the Perl proxy's format) and reads replies from its reply
 * key, each checked by the gateway's `parseReply`.
 */
export class FakeGateway {
  readonly who = `wsp:reply:test:${randomUUID()}`;
  private nextMessageId = 1;

  constructor(
    private readonly client: Redis,
    readonly streamPrefix: string,
  ) {}

  /** Writes one request; returns its message_id. */
  async send(
    method: string,
    frame: Record<string, unknown> = { [method]: 1 },
    options: { category?: string; deadlineSeconds?: number; stash?: Record<string, unknown> } = {},
  ): Promise<string> {
    const messageId = String(this.nextMessageId++);
    const stash = options.stash ?? {};
    const deadline = options.deadlineSeconds ?? Math.floor(Date.now() / 1000) + 30;
    const entry: StreamEntry = {
      method,
      who: this.who,
      deadline,
      args: { args: frame, ...stash },
      stashParams: Object.keys(stash),
      correlationId: randomUUID(),
    };
    const stream = `${this.streamPrefix}${options.category ?? "general"}`;
    await this.client.xadd(stream, "MAXLEN", "~", "100000", "*", ...entryFields(entry, messageId));
    return messageId;
  }

  /** Waits until `count` replies arrived (or `timeoutMs` passed) and returns all of them by message_id. */
  async replies(count: number, timeoutMs = 5000): Promise<Map<string, ReplyPayload>> {
    const received = new Map<string, ReplyPayload>();
    const unreadable: string[] = [];
    await waitFor(async () => {
      const raw = await this.client.lpop(this.who, 1000);
      for (const text of raw ?? []) {
        if (!readableByGateway(text)) unreadable.push(text);
        else {
          const payload = JSON.parse(text) as ReplyPayload;
          received.set(payload.message_id, payload);
        }
      }
      return received.size >= count;
    }, timeoutMs).catch(() => undefined);
    // A reply the gateway cannot read fails the client's request, so it fails the test too.
    if (unreadable.length > 0) throw new Error(`replies the gateway cannot read: ${unreadable.join(" ")}`);
    return received;
  }

  /** The result of one request, or throws when no reply came. */
  async resultOf(messageId: string, timeoutMs = 5000): Promise<unknown> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const replies = await this.replies(1, deadline - Date.now());
      const reply = replies.get(messageId);
      if (reply) return reply.response.result;
    }
    throw new Error(`no reply to message ${messageId} within ${timeoutMs} ms`);
  }
}

function readableByGateway(payload: string): boolean {
  try {
    parseReply(payload);
    return true;
  } catch {
    return false;
  }
}

/** Creates services for a test and closes them all afterwards; log lines are kept for assertions. */
export class ServiceHarness {
  readonly logs: LogEntry[] = [];
  private readonly services: RpcService[] = [];
  readonly streamPrefix = `t${randomUUID().slice(0, 8)}:`;
  readonly gateway: FakeGateway;

  constructor(
    private readonly redis: TestRedis,
    private readonly kind: TransportKind,
  ) {
    this.gateway = new FakeGateway(redis.client, this.streamPrefix);
  }

  /** Creates and starts a service with fast test timings; `options` override them. */
  async start(
    options: Partial<RpcServiceOptions> & Pick<RpcServiceOptions, "handlers">,
  ): Promise<RpcService> {
    const service = createRpcService({
      redis: this.redis.redisOption(this.kind),
      streamPrefix: this.streamPrefix,
      claimIdleMs: 300,
      pollMaxMs: 50,
      blockMs: 1000,
      retryMinMs: 20,
      retryMaxMs: 200,
      closeTimeoutMs: 2000,
      logger: (entry) => this.logs.push(entry),
      ...options,
    });
    this.services.push(service);
    await service.start();
    return service;
  }

  /** Closes every service this harness started. */
  async closeAll(): Promise<void> {
    await Promise.all(this.services.map((service) => service.close()));
  }
}

/** The entries of `<stream>:dead`, oldest first, each as an object of its fields. */
/** How many entries of `stream` the service's consumer group holds pending (read, not acked). */
export async function pendingEntries(client: Redis, stream: string): Promise<number> {
  const [pending] = (await client.xpending(stream, "processors")) as [number];
  return pending;
}

export async function readDeadLetters(client: Redis, stream: string): Promise<Record<string, string>[]> {
  const entries = (await client.xrange(`${stream}:dead`, "-", "+")) as [string, string[]][];
  return entries.map(([, fields]) =>
    Object.fromEntries(fields.flatMap((_, i) => (i % 2 ? [] : [[fields[i], fields[i + 1]]]))),
  );
}

/**
 * A native transport to `url` whose reply batches go through `pipeline`: it gets the real round trip
 * (`send`) and the batch's commands, and may fail before or after running them, as a dropped connection does.
 */
export function interceptedTransport(
  url: string,
  pipeline: (send: () => Promise<PipelineResult[]>, commands: WriteCommand[]) => Promise<PipelineResult[]>,
): ServiceTransport {
  const inner = createNativeTransport(url);
  return {
    kind: inner.kind,
    target: inner.target,
    supportsBlockingReads: inner.supportsBlockingReads,
    read: (command) => inner.read(command),
    call: (command) => inner.call(command),
    pipeline: (commands) => pipeline(() => inner.pipeline(commands), commands),
    stopReading: () => inner.stopReading(),
    close: () => inner.close(),
  };
}
