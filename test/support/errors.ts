/** Test support: the code of the module error a call throws. */

/** The `code` of the `errorClass` error `f` throws, or 'ok' when it returns; any other error is rethrown. */
export function errorCode(
  errorClass: abstract new (...args: never[]) => Error & { readonly code: string },
  f: () => unknown,
): string {
  try {
    f();
  } catch (e) {
    if (e instanceof errorClass) return e.code;
    throw e;
  }
  return 'ok';
}
