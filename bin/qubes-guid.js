#!/usr/bin/env node
// qubes-guid: the GUI daemon, one domain per process (see guid/cli.ts).
import { register } from "tsx/esm/api";

register();
const { main } = await import("../guid/cli.ts");
process.exitCode = await main(process.argv.slice(2));
