import { expect } from "bun:test";
import { CotacaoError } from "../../lib/errors.ts";

/** The error of the project's family (lib/errors.ts) that `fn` throws at once, checked to carry `code`. */
export function thrown(fn: () => unknown, code: string): CotacaoError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(CotacaoError);
    expect((error as CotacaoError).code).toBe(code);
    return error as CotacaoError;
  }
  throw new Error(`expected an error with code ${code}, but it returned`);
}
