#!/usr/bin/env node
// qubes-gui-agent: the in-domain GUI agent (see gui-agent/cli.ts).
// Node starts its inspector on 127.0.0.1:9229 at a SIGUSR1 nobody listens for: any local user could
// then run code in this process. A listener from the first line on keeps the signal ours.
process.on("SIGUSR1", () => undefined);
const { launch } = await import("./launch.js");

await launch("qubes-gui-agent", new URL("../gui-agent/cli.ts", import.meta.url).href);
