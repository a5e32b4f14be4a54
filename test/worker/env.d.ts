// Types of the `cloudflare:test` module (runInDurableObject, createExecutionContext...).
/// <reference types="@cloudflare/vitest-pool-workers/types" />
