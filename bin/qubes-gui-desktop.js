#!/usr/bin/env node
// qubes-gui-desktop: a Wayland compositor shown in a browser (see desktop/cli.ts).
// Node starts its inspector on 127.0.0.1:9229 at a SIGUSR1 nobody listens for: any local user could
// then run code in this process. A listener from the first line on keeps the signal ours.
process.on("SIGUSR1", () => undefined);
const { register } = await import("tsx/esm/api");

register();
let main;
try {
  ({ main } = await import("../desktop/cli.ts"));
} catch (error) {
  // A checkout without the built addon: one line saying what to do, no stack.
  if (error?.code !== "ADDON_NOT_BUILT") throw error;
  process.stderr.write(`qubes-gui-desktop: ${error.message}\n`);
  process.exit(1);
}
process.exitCode = await main(process.argv.slice(2));
