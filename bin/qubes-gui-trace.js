#!/usr/bin/env node
// qubes-gui-trace: loads the TypeScript CLI (protocol/trace/cli.ts) through tsx.
import { register } from "tsx/esm/api";

register();
await import("../protocol/trace/cli.ts");
