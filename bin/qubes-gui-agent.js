#!/usr/bin/env node
// qubes-gui-agent: the in-domain GUI agent (see gui-agent/cli.ts).
import { register } from "tsx/esm/api";

register();
const { main } = await import("../gui-agent/cli.ts");
process.exitCode = await main(process.argv.slice(2));
