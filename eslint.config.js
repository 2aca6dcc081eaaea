// Lint configuration. Beyond the recommended rules, it enforces the layer
// table of ../shared/docs/architecture.md: which folder may import which,
// and that imports across folders go through the folder's index.ts.
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import importX from "eslint-plugin-import-x";

/** folder -> folders it may import (architecture.md, "Layers"). */
const layers = {
  native: [],
  shm: ["native", "protocol"],
  vchan: ["shm", "native"],
  protocol: [],
  wayland: ["native"],
  compositor: ["wayland", "native"],
  "gui-agent": ["protocol", "vchan", "shm", "wayland", "compositor"],
  guid: ["protocol", "vchan", "shm", "wayland", "decorator"],
  decorator: ["protocol"],
  desktop: ["compositor", "wayland", "native"],
  "demo-app": ["wayland"],
};
const components = Object.keys(layers);

const zones = [];
for (const [folder, allowed] of Object.entries(layers)) {
  for (const other of components) {
    if (other === folder) continue;
    if (allowed.includes(other)) {
      zones.push({
        target: `./${folder}`,
        from: `./${other}`,
        except: ["./index.ts"],
        message: `${folder}/ may import ${other}/ only through ${other}/index.ts.`,
      });
    } else {
      zones.push({
        target: `./${folder}`,
        from: `./${other}`,
        message: `${folder}/ may not import ${other}/ (architecture.md layer table: ${folder} may import ${allowed.join(", ") || "nothing"}).`,
      });
    }
  }
}
// Programs are not libraries: nothing outside them imports gui-agent/ or guid/
// except their tests (zones above already cover the components).
zones.push(
  {
    target: "./bench",
    from: "./gui-agent",
    except: ["./index.ts"],
    message: "bench/ uses gui-agent/ only through its index.ts.",
  },
  {
    target: "./bench",
    from: "./guid",
    except: ["./index.ts"],
    message: "bench/ uses guid/ only through its index.ts.",
  },
);

export default tseslint.config(
  { ignores: ["node_modules/", "build/", "dist/", "coverage/", "**/*.generated.ts"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts", "**/*.js", "**/*.mjs"],
    plugins: { "import-x": importX },
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: "module",
      globals: {
        process: "readonly",
        console: "readonly",
        Buffer: "readonly",
        setTimeout: "readonly",
        clearTimeout: "readonly",
        setInterval: "readonly",
        clearInterval: "readonly",
        setImmediate: "readonly",
        URL: "readonly",
      },
    },
    settings: { "import-x/extensions": [".ts", ".js", ".mjs"] },
    rules: {
      "import-x/no-restricted-paths": ["error", { zones }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
    },
  },
  {
    // decorator/ sees protocol/ types only, never its code.
    files: ["decorator/**/*.ts"],
    rules: {
      "@typescript-eslint/no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["**/protocol/**", "../protocol"],
              allowTypeImports: true,
              message: "decorator/ may import protocol/ types only.",
            },
          ],
        },
      ],
    },
  },
  {
    // protocol/ is pure: no I/O, no timers, no process.
    files: ["protocol/**/*.ts"],
    ignores: ["protocol/trace/**"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["node:*", "fs", "net", "child_process", "os", "path"],
              message: "protocol/ is pure: no I/O (the trace tool lives in protocol/trace/).",
            },
          ],
        },
      ],
      "no-restricted-globals": ["error", "setTimeout", "setInterval", "setImmediate", "process"],
    },
  },
);
