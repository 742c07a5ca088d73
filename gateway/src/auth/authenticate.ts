import type { Socket } from 'node:net'
import { TLSSocket } from 'node:tls'
import type { AccessControl, Principal } from './access.ts'
import type { ConnectionGuard } from './guard.ts'
import {
  DEFAULT_SCRYPT,
  hashPassword,
  verifyPassword,
  type Account,
  type CredentialStore,
  type ScryptHash,
} from './store.ts'

export type LoginResult =
  | {
      readonly ok: true
      readonly principal: Principal
      readonly method: 'anonymous' | 'password' | 'certificate'
      readonly account?: Account
    }
  /** 4: bad user name or password; 5: not authorized (CONNACK return codes of MQTT 3.1.1). */
  | {
      readonly ok: false
      readonly returnCode: 4 | 5
      readonly reason: 'anonymous_refused' | 'bad_credentials' | 'certificate_mismatch' | 'account_invalid'
    }

/** At most this many scrypt derivations at once: a CONNECT flood queues instead of taking all of libuv's threads. */
const MAX_CONCURRENT_HASHES = 2

/**
 * Checks a CONNECT's credentials. A verified client certificate (mutual TLS) whose common name or a DNS/URI
 * subject alternative name is a device account logs in as that device; otherwise the user name and password are
 * checked against the credential store. Unknown names cost the same scrypt work as known ones, so the timing does
 * not tell which names exist.
 */
export class Authenticator {
  readonly #store: CredentialStore
  readonly #access: AccessControl
  readonly #guard: ConnectionGuard
  readonly #allowAnonymous: boolean
  #dummy: Promise<ScryptHash> | undefined
  #running = 0
  readonly #waiting: (() => void)[] = []

  constructor(options: {
    store: CredentialStore
    access: AccessControl
    guard: ConnectionGuard
    allowAnonymous: boolean
  }) {
    this.#store = options.store
    this.#access = options.access
    this.#guard = options.guard
    this.#allowAnonymous = options.allowAnonymous
  }

  get allowAnonymous(): boolean {
    return this.#allowAnonymous
  }

  /** `socket` is the TCP or TLS socket under the MQTT stream (for WebSocket, the HTTP request's socket). */
  async login(
    socket: Socket | undefined,
    username: string | undefined,
    password: Buffer | undefined,
  ): Promise<LoginResult> {
    const address = socket?.remoteAddress ?? 'unknown'
    const certName = certificateNames(socket)
    if (certName !== undefined) {
      const account = certName.map((n) => this.#store.get(n)).find((a) => a?.role === 'device')
      if (account !== undefined && (username === undefined || username === account.name)) {
        const principal = this.#access.principalOf(account)
        if (principal === undefined) return this.#fail(address, 5, 'account_invalid')
        this.#guard.succeededLogin(address)
        return { ok: true, principal, method: 'certificate', account }
      }
      if (account !== undefined) return this.#fail(address, 5, 'certificate_mismatch')
    }
    if (username === undefined && password === undefined) {
      if (this.#allowAnonymous) return { ok: true, principal: { role: 'anonymous' }, method: 'anonymous' }
      return this.#fail(address, 5, 'anonymous_refused')
    }
    const account = username === undefined ? undefined : this.#store.get(username)
    const ok = await this.#limited(async () => {
      if (account === undefined || password === undefined) {
        // Made on first use (a gateway start should not pay for it), then reused.
        this.#dummy ??= hashPassword('veil-no-such-account', DEFAULT_SCRYPT)
        await verifyPassword(password ?? '', await this.#dummy)
        return false
      }
      return verifyPassword(password, account.password)
    })
    if (!ok || account === undefined) return this.#fail(address, 4, 'bad_credentials')
    const principal = this.#access.principalOf(account)
    if (principal === undefined) return this.#fail(address, 5, 'account_invalid')
    this.#guard.succeededLogin(address)
    return { ok: true, principal, method: 'password', account }
  }

  async #fail(
    address: string,
    returnCode: 4 | 5,
    reason: 'anonymous_refused' | 'bad_credentials' | 'certificate_mismatch' | 'account_invalid',
  ): Promise<LoginResult> {
    const delay = this.#guard.failedLogin(address)
    await new Promise((r) => setTimeout(r, delay))
    return { ok: false, returnCode, reason }
  }

  async #limited<T>(task: () => Promise<T>): Promise<T> {
    if (this.#running >= MAX_CONCURRENT_HASHES) await new Promise<void>((r) => this.#waiting.push(r))
    else this.#running++
    try {
      return await task()
    } finally {
      const next = this.#waiting.shift()
      if (next === undefined) this.#running--
      else next()
    }
  }
}

/** The names a verified client certificate vouches for: its CN and its DNS and URI subject alternative names. */
function certificateNames(socket: Socket | undefined): string[] | undefined {
  if (!(socket instanceof TLSSocket) || !socket.authorized) return undefined
  const cert = socket.getPeerCertificate()
  if (cert === null || Object.keys(cert).length === 0) return undefined
  const names: string[] = []
  const cn = cert.subject?.CN
  if (typeof cn === 'string') names.push(cn)
  else if (Array.isArray(cn)) names.push(...(cn as string[]))
  for (const part of (cert.subjectaltname ?? '').split(/,\s*/)) {
    const m = /^(DNS|URI):(.+)$/.exec(part)
    if (m !== null) names.push(m[2] as string)
  }
  return names.length === 0 ? undefined : names
}
