/**
 * The password answers PostgreSQL asks a client for, for lib/pg_wire.ts: MD5 and SCRAM-SHA-256
 * (RFC 5802, RFC 7677) with Bun's hasher and WebCrypto, so no node:crypto is loaded.
 */

const encoder = new TextEncoder();

function md5Hex(data: string | Uint8Array): string {
  return new Bun.CryptoHasher("md5").update(data).digest("hex");
}

/** PostgreSQL's MD5 answer: "md5" + md5(md5(password + user) + salt). */
export function md5Password(user: string, password: string, salt: Uint8Array): string {
  const inner = encoder.encode(md5Hex(password + user));
  const salted = new Uint8Array(inner.length + salt.length);
  salted.set(inner);
  salted.set(salt, inner.length);
  return `md5${md5Hex(salted)}`;
}

function hmac(key: Uint8Array, data: string | Uint8Array): Uint8Array {
  return new Uint8Array(new Bun.CryptoHasher("sha256", key).update(data).digest());
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64");
}

/**
 * The client side of SCRAM-SHA-256 without channel binding (no TLS here). The user name goes in
 * the start-up message; PostgreSQL ignores SCRAM's (RFC 5802 n=). The password is used as given,
 * as postgres.js uses it (no SASLprep, which leaves ASCII passwords as they are).
 */
export class ScramClient {
  readonly #nonce = base64(crypto.getRandomValues(new Uint8Array(18)));
  #serverSignature = "";

  constructor(private readonly password: string) {}

  #clientFirstBare(): string {
    return `n=*,r=${this.#nonce}`;
  }
  clientFirst(): string {
    return `n,,${this.#clientFirstBare()}`;
  }
  async clientFinal(serverFirst: string): Promise<string> {
    const fields = scramFields(serverFirst);
    const nonce = fields["r"] ?? "";
    const salt = Buffer.from(fields["s"] ?? "", "base64");
    const iterations = Number(fields["i"]);
    if (!nonce.startsWith(this.#nonce) || nonce.length <= this.#nonce.length || salt.length === 0 || !(iterations > 0)) {
      throw new Error("Cannot connect: the server's SCRAM-SHA-256 challenge is malformed");
    }
    const key = await crypto.subtle.importKey("raw", encoder.encode(this.password), "PBKDF2", false, ["deriveBits"]);
    const salted = new Uint8Array(await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, key, 256));
    const clientKey = hmac(salted, "Client Key");
    const storedKey = new Uint8Array(new Bun.CryptoHasher("sha256").update(clientKey).digest());
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.#clientFirstBare()},${serverFirst},${withoutProof}`;
    const signature = hmac(storedKey, authMessage);
    const proof = clientKey.map((byte, i) => byte ^ signature[i]!);
    this.#serverSignature = base64(hmac(hmac(salted, "Server Key"), authMessage));
    return `${withoutProof},p=${base64(proof)}`;
  }
  /** The server proves it knows the password too (a server that does not is not PostgreSQL's). */
  verifyServerFinal(serverFinal: string): void {
    const fields = scramFields(serverFinal);
    if (fields["e"] !== undefined) throw new Error(`Cannot connect: SCRAM-SHA-256 authentication failed (${fields["e"]})`);
    if (!this.#serverSignature || fields["v"] !== this.#serverSignature) {
      throw Object.assign(new Error("Cannot connect: the server's SCRAM-SHA-256 signature is wrong; it is not the server DATABASE_URL names, or it does not know the password"), {
        code: "SCRAM_SERVER_SIGNATURE",
      });
    }
  }
}

function scramFields(message: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const part of message.split(",")) {
    const at = part.indexOf("=");
    if (at > 0) fields[part.slice(0, at)] = part.slice(at + 1);
  }
  return fields;
}
