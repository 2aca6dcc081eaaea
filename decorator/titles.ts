/**
 * The domain's name in the host's window list: the `[name] ` title prefix,
 * the `name:` WM_CLASS prefix, and the qube-name rule the name must pass
 * before the daemon uses it (qubes-gui-protocol.md 4.5, 4.6). The prefix is
 * added by the daemon after validation, so a domain cannot remove or fake it.
 */

declare const vmNameBrand: unique symbol;

/** A qube name that passed {@link checkVmName}; only this module makes one. */
export type VmName = string & { readonly [vmNameBrand]: true };

/** Longest qube name in bytes (upstream QUBES_PURE_MAX_QUBE_NAME_LEN). */
export const MAX_VM_NAME_LENGTH = 31;

const RESERVED_NAMES: ReadonlySet<string> = new Set(["none", "default", "Domain-0"]);

const utf8 = new TextEncoder();

/** Why `name` is not a valid qube name, or null when it is one. */
function vmNameProblem(name: string): string | null {
  const bytes = utf8.encode(name).length;
  if (bytes === 0) return "is empty";
  if (bytes > MAX_VM_NAME_LENGTH) return `is ${bytes} bytes long, more than ${MAX_VM_NAME_LENGTH}`;
  if (!/^[A-Za-z]/.test(name)) return "does not start with an ASCII letter";
  if (!/^[A-Za-z][A-Za-z0-9_.-]*$/.test(name)) return "contains a character other than A-Z a-z 0-9 _ . -";
  if (RESERVED_NAMES.has(name)) return "is reserved";
  if (name.endsWith("-dm")) return 'ends with "-dm" (reserved for device-model stub domains)';
  return null;
}

/**
 * Whether `name` is a valid qube name by upstream's rule (libqubes-pure
 * `qubes_pure_is_valid_qube_name`): 1..31 bytes, an ASCII letter then
 * letters, digits, `_`, `.`, `-`; not `none`, `default` or `Domain-0`; not
 * ending in `-dm`. The name ends up in titles, classes and paths, so it must
 * be one that Qubes itself could have given a domain.
 */
export function isValidVmName(name: string): name is VmName {
  return vmNameProblem(name) === null;
}

/**
 * Returns `name` as a {@link VmName}, or throws a RangeError that says which
 * part of the qube-name rule it breaks, so that `qubes-guid -N` fails at
 * start-up with a message the user can act on.
 */
export function checkVmName(name: string): VmName {
  const problem = vmNameProblem(name);
  if (problem !== null) throw new RangeError(`invalid qube name ${JSON.stringify(name)}: ${problem}`);
  return name as VmName;
}

/**
 * The title the host shows: `[vmName] title`, always with the prefix, so that
 * every window names its domain whatever the domain put in its title. The
 * title must already be the validator's sanitised text.
 */
export function decorateTitle(vmName: VmName, title: string): string {
  return `[${vmName}] ${title}`;
}

/**
 * The WM_CLASS / app_id the host sees: `vmName:resClass`, or `vmName` alone
 * when the class is empty, so that a domain's windows can never group with
 * another domain's or with the host's own applications.
 */
export function decorateClass(vmName: VmName, resClass: string): string {
  return resClass === "" ? vmName : `${vmName}:${resClass}`;
}
