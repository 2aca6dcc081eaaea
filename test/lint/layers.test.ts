import { ESLint } from "eslint";
import { describe, expect, it } from "vitest";

import { repoRoot } from "../helpers/processes.ts";

const eslint = new ESLint({ cwd: repoRoot });

async function lint(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${repoRoot}/${file}` });
  return (result?.messages ?? []).map((message) => `${message.ruleId}: ${message.message}`);
}

describe("the layer table of architecture.md", () => {
  it("fails an import of native/ from protocol/, which may import nothing", async () => {
    const messages = await lint(
      "protocol/bad.ts",
      'import { close } from "../native/index.ts";\nexport const f = close;\n',
    );
    expect(messages).toEqual([
      expect.stringMatching(/^import-x\/no-restricted-paths: .*protocol\/ may not import native\//),
    ]);
  });

  it("fails a deep import that skips the other folder's index.ts", async () => {
    const messages = await lint(
      "shm/bad.ts",
      'import type { NativeBinding } from "../native/addon.d.ts";\nexport type B = NativeBinding;\n',
    );
    expect(messages).toEqual([expect.stringMatching(/shm\/ may import native\/ only through native\/index\.ts/)]);
  });

  it("passes an allowed import through index.ts", async () => {
    const messages = await lint(
      "shm/good.ts",
      'import { close } from "../native/index.ts";\nexport const f = close;\n',
    );
    expect(messages).toEqual([]);
  });

  it("keeps protocol/ pure: no node: imports, no timers", async () => {
    const messages = await lint(
      "protocol/impure.ts",
      'import { readFileSync } from "node:fs";\nexport const f = readFileSync;\nsetTimeout(() => 0, 1);\n',
    );
    expect(messages.some((m) => m.startsWith("no-restricted-imports"))).toBe(true);
    expect(messages.some((m) => m.startsWith("no-restricted-globals"))).toBe(true);
  });
});
