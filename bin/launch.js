// What every program of bin/ does after its first line (which keeps SIGUSR1 away from Node's
// inspector): load TypeScript through tsx, import the program's CLI module, run its main with the
// arguments, and exit with what it returns. A checkout without the built addon gets one line
// saying what to do, no stack.
const { register } = await import("tsx/esm/api");

register();

/** Runs `main(argv)` of the CLI module at `cli` (a URL), as the program `name`. */
export async function launch(name, cli) {
  let main;
  try {
    ({ main } = await import(cli));
  } catch (error) {
    if (error?.code !== "ADDON_NOT_BUILT") throw error;
    process.stderr.write(`${name}: ${error.message}\n`);
    process.exit(1);
  }
  process.exitCode = await main(process.argv.slice(2));
}
