/** The wire contract, for the consumer-groups backend's import: it lives in `src/wire/`. */
export * from "../wire/index.js";
