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

/** The error of class `kind` (of the family) that `promise` rejects with, checked to carry `code`. */
export async function rejected<E extends CotacaoError>(promise: Promise<unknown>, kind: abstract new (...args: never[]) => E, code: string): Promise<E> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(kind);
    expect(error).toBeInstanceOf(CotacaoError);
    const typed = error as E;
    expect({ code: typed.code, message: typed.message }).toMatchObject({ code });
    return typed;
  }
  throw new Error(`expected a ${kind.name} with code ${code}, but it succeeded`);
}
