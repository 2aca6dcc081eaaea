#!/usr/bin/env node
// qubes-gui-trace: loads the TypeScript CLI (protocol/trace/cli.ts) through tsx.
// Node starts its inspector on 127.0.0.1:9229 at a SIGUSR1 nobody listens for: any local user could
// then run code in this process. A listener from the first line on keeps the signal ours.
process.on("SIGUSR1", () => undefined);
const { register } = await import("tsx/esm/api");

register();
await import("../protocol/trace/cli.ts");
