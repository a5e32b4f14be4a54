import js from "@eslint/js";
import tseslint from "typescript-eslint";

/**
 * The layering, as a lint rule: each entry names the folders a part of the library may not import, so a
 * wrong import fails `npm run lint`. The wire module sits at the bottom and imports nothing of the project;
 * the core is portable (no platform code); the Worker glue never pulls in Node-only parts.
 */
const LAYERS = [
  { files: ["src/wire/**"], forbidden: ["core", "backends", "worker", "consumer", "bridge", "devstack"] },
  { files: ["src/core/**"], forbidden: ["backends", "worker", "consumer", "bridge", "devstack"] },
  { files: ["src/backends/**"], forbidden: ["worker", "consumer", "bridge", "devstack"] },
  { files: ["src/worker/**"], forbidden: ["consumer", "bridge", "devstack"] },
  { files: ["src/consumer/**"], forbidden: ["worker", "backends", "bridge", "devstack"] },
  { files: ["src/bridge/**"], forbidden: ["core", "backends", "worker", "consumer", "devstack"] },
  { files: ["src/cli/**"], forbidden: ["core", "backends", "worker", "consumer", "bridge", "devstack"] },
];

export default tseslint.config(
  {
    ignores: [
      "node_modules/",
      "**/.wrangler/",
      "dist/",
      "coverage/",
      "bench-results/",
      ".stryker-tmp/",
      "reports/",
      "scratch/",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-constant-condition": ["error", { checkLoops: false }],
    },
  },
  ...LAYERS.map(({ files, forbidden }) => ({
    files,
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: forbidden.map((layer) => ({
            group: [`**/${layer}/*`, `../${layer}`, `../../${layer}`],
            message: `${files[0].split("/")[1]} may not import ${layer} (see the layering in eslint.config.js)`,
          })),
        },
      ],
    },
  })),
  // Tools and the example deployment users run must work without the tests: none imports from test/.
  {
    files: ["scripts/**", "bench/**", "examples/**"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["**/test/*", "**/test/**"],
              message:
                "scripts, bench and examples may not import tests: move what they share to bench/ or src/devstack/",
            },
          ],
        },
      ],
    },
  },
);
