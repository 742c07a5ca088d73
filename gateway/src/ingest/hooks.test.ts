/**
 * The broker's aedes hooks called directly, with fake clients and access rules: no broker, no socket. What the
 * hooks do together on a live broker is covered by test/security and test/e2e.
 */
import type { AedesPublishPacket, AuthenticateError, Client, PublishPacket, Subscription } from 'aedes'
import { describe, expect, it } from 'vitest'
import type { Principal } from '../auth/access.ts'
import type { LoginResult } from '../auth/authenticate.ts'
import { silentLogger } from '../telemetry/log.ts'
import { Metrics } from '../telemetry/metrics.ts'
import {
  authenticate,
  authorizeForward,
  authorizePublish,
  authorizeSubscribe,
  clientDisconnected,
  clientReady,
  newHookState,
  preConnect,
  type HookContext,
} from './hooks.ts'

const device: Principal = {
  role: 'device',
  deviceId: 'p1',
  profile: 'smart_plug',
  scope: 'device',
  publishes: ['tele/p1/#'],
  commands: [],
  publishLevels: [],
  commandLevels: [],
}
const consumer: Principal = { role: 'consumer', domain: 'svc' }
const admin: Principal = { role: 'admin' }

/** Only the fields the hooks read. */
function fakeClient(id: string, clean = true): Client {
  return { id, clean } as unknown as Client
}

function publish(topic: string, extra: Partial<PublishPacket> = {}): PublishPacket {
  return { cmd: 'publish', topic, payload: Buffer.from('x'), qos: 1, retain: true, dup: false, ...extra }
}

async function refusals(metrics: Metrics, stage: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const v of (await metrics.authRefusals.get()).values)
    if (v.labels.stage === stage) out[String(v.labels.reason)] = v.value
  return out
}

interface Recorded {
  raw: string[]
  refused: number
  stored: boolean
}

/** A context whose access rules allow devices to publish under `tele/`, consumers to subscribe under `veil/`. */
function contextOf(
  login: (username: string | undefined) => Promise<LoginResult> = async () => ({
    ok: true,
    principal: device,
    method: 'password',
  }),
): { context: HookContext; metrics: Metrics; recorded: Recorded } {
  const metrics = new Metrics({ defaultMetrics: false })
  const recorded: Recorded = { raw: [], refused: 0, stored: false }
  const context: HookContext = {
    logger: silentLogger(),
    metrics,
    authenticator: { login: async (_socket, username) => login(username) },
    access: {
      decidePublish: (p, topic) =>
        p.role === 'device' && topic.startsWith('tele/') ? 'pipeline' : p.role === 'local' ? 'command' : 'refuse',
      maySubscribe: (p, filter) => p.role === 'consumer' && filter.startsWith('veil/'),
      mayReceiveRaw: (receiver, publisher, topic) =>
        receiver.role === 'admin' && publisher?.role === 'device' && topic.startsWith('tele/'),
    },
    onRawPublish: async (topic) => {
      recorded.raw.push(topic)
    },
    onPublishRefused: () => recorded.refused++,
    incomingGetPacket: async () => {
      if (!recorded.stored) throw new Error('no such packet')
    },
  }
  return { context, metrics, recorded }
}

/** Calls a callback-style hook and resolves with the arguments of its callback. */
function called<T extends unknown[]>(hook: (callback: (...args: T) => void) => void): Promise<T> {
  return new Promise((resolve) => hook((...args) => resolve(args)))
}

describe('broker hooks', () => {
  describe('preConnect and authenticate', () => {
    it('refuses an empty client id with a persistent session with CONNACK 0x02, before any login', async () => {
      let logins = 0
      const { context, metrics } = contextOf(async () => {
        logins++
        return { ok: true, principal: device, method: 'password' }
      })
      const state = newHookState(4)
      const client = fakeClient('', false)
      const [err, ok] = await called<[Error | null, boolean]>((cb) =>
        preConnect(
          state,
          client,
          { cmd: 'connect', clientId: '', clean: false, protocolId: 'MQTT', protocolVersion: 4, keepalive: 60 },
          cb,
        ),
      )
      expect([err, ok]).toEqual([null, true])
      const [refusal, success] = await called<[AuthenticateError | null, boolean | null]>((cb) =>
        authenticate(context, state, client, undefined, undefined, cb),
      )
      expect(success).toBe(false)
      expect(refusal?.returnCode).toBe(2)
      expect(logins).toBe(0)
      expect(await refusals(metrics, 'login')).toEqual({ identifier_rejected: 1 })
    })

    it('does not mark an empty id with a clean session', async () => {
      const state = newHookState(4)
      const client = fakeClient('', true)
      await called((cb) =>
        preConnect(
          state,
          client,
          { cmd: 'connect', clientId: '', clean: true, protocolId: 'MQTT', protocolVersion: 4, keepalive: 60 },
          cb,
        ),
      )
      expect(state.emptyIdWithSession.has(client)).toBe(false)
    })

    it('remembers the principal and account of a login, and answers a refused one with its return code', async () => {
      const account = { name: 'p1', role: 'device', created: '2026-01-01T00:00:00Z' } as unknown as NonNullable<
        Extract<LoginResult, { ok: true }>['account']
      >
      const { context, metrics } = contextOf(async (username) =>
        username === 'good'
          ? { ok: true, principal: device, method: 'password', account }
          : { ok: false, returnCode: 4, reason: 'bad_credentials' },
      )
      const state = newHookState(4)
      const good = fakeClient('a')
      expect(await called((cb) => authenticate(context, state, good, 'good', Buffer.from('pw'), cb))).toEqual([
        null,
        true,
      ])
      expect(state.principals.get(good)).toBe(device)
      expect(state.accounts.get(good)).toBe(account)

      const bad = fakeClient('b')
      const [err, ok] = await called<[AuthenticateError | null, boolean | null]>((cb) =>
        authenticate(context, state, bad, 'bad', Buffer.from('pw'), cb),
      )
      expect(ok).toBe(false)
      expect(err?.returnCode).toBe(4)
      expect(state.principals.has(bad)).toBe(false)
      expect(await refusals(metrics, 'login')).toEqual({ bad_credentials: 1 })
    })

    it('answers a login that fails outright with CONNACK 0x03', async () => {
      const { context } = contextOf(async () => {
        throw new Error('store unreadable')
      })
      const [err, ok] = await called<[AuthenticateError | null, boolean | null]>((cb) =>
        authenticate(context, newHookState(4), fakeClient('a'), 'x', undefined, cb),
      )
      expect(ok).toBe(false)
      expect(err?.returnCode).toBe(3)
    })
  })

  describe('authorizePublish', () => {
    it('refuses, with an error that closes the connection, a publish into the filtered namespace or $SYS', async () => {
      const { context, recorded } = contextOf()
      const state = newHookState(4)
      const client = fakeClient('a')
      state.principals.set(client, device)
      for (const topic of ['veil/svc/x', 'veil', '$SYS/broker']) {
        const [err] = await called<[Error | null | undefined]>((cb) =>
          authorizePublish(context, state, client, publish(topic), cb),
        )
        expect(err).toBeInstanceOf(Error)
      }
      expect(recorded.raw).toEqual([])
    })

    it('runs a permitted raw publish through the pipeline before acknowledging it, and never keeps it retained', async () => {
      const { context, recorded } = contextOf()
      const state = newHookState(4)
      const client = fakeClient('a')
      state.principals.set(client, device)
      const packet = publish('tele/p1/state')
      const [err] = await called<[Error | null | undefined]>((cb) =>
        authorizePublish(context, state, client, packet, cb),
      )
      expect(err).toBeNull()
      expect(recorded.raw).toEqual(['tele/p1/state'])
      expect(packet.retain).toBe(false)
    })

    it('acknowledges and drops a publish the access rules refuse, and one from a client that never logged in', async () => {
      const { context, recorded, metrics } = contextOf()
      const state = newHookState(4)
      const client = fakeClient('a')
      state.principals.set(client, consumer)
      expect(await called((cb) => authorizePublish(context, state, client, publish('tele/p1/state'), cb))).toEqual([
        null,
      ])
      expect(
        await called((cb) => authorizePublish(context, state, fakeClient('stranger'), publish('tele/p1/state'), cb)),
      ).toEqual([null])
      expect(recorded.raw).toEqual([])
      expect(recorded.refused).toBe(2)
      expect(await refusals(metrics, 'publish')).toEqual({ consumer: 1, unknown: 1 })
    })

    it('lets a command through without the pipeline, and without counting a refusal', async () => {
      const { context, recorded } = contextOf()
      const state = newHookState(4)
      const client = fakeClient('a')
      state.principals.set(client, { role: 'local' })
      expect(await called((cb) => authorizePublish(context, state, client, publish('cmnd/p1/power'), cb))).toEqual([
        null,
      ])
      expect(recorded).toEqual({ raw: [], refused: 0, stored: false })
    })

    it('runs a will replayed without a client as anonymous', async () => {
      const { context, recorded } = contextOf()
      expect(
        await called((cb) => authorizePublish(context, newHookState(4), null, publish('tele/p1/LWT'), cb)),
      ).toEqual([null])
      // The fake rules give anonymous no publish: refused, as a will of a client that could not publish would be.
      expect(recorded.raw).toEqual([])
      expect(recorded.refused).toBe(1)
    })

    it('does not run a QoS 2 retransmission aedes already holds through the pipeline again', async () => {
      const { context, recorded } = contextOf()
      const state = newHookState(4)
      const client = fakeClient('a')
      state.principals.set(client, device)
      recorded.stored = true
      expect(
        await called((cb) =>
          authorizePublish(context, state, client, publish('tele/p1/state', { qos: 2, dup: true, messageId: 7 }), cb),
        ),
      ).toEqual([null])
      expect(recorded.raw).toEqual([])
      recorded.stored = false
      expect(
        await called((cb) =>
          authorizePublish(context, state, client, publish('tele/p1/state', { qos: 2, dup: true, messageId: 8 }), cb),
        ),
      ).toEqual([null])
      expect(recorded.raw).toEqual(['tele/p1/state'])
    })

    it('holds a client to its in-flight limit: the next publish waits until one finishes', async () => {
      const { context } = contextOf()
      const finish: (() => void)[] = []
      const started: string[] = []
      const held: HookContext = {
        ...context,
        onRawPublish: (topic) =>
          new Promise<void>((resolve) => {
            started.push(topic)
            finish.push(resolve)
          }),
      }
      const state = newHookState(1)
      const client = fakeClient('a')
      state.principals.set(client, device)
      const acked: string[] = []
      for (const topic of ['tele/p1/a', 'tele/p1/b'])
        authorizePublish(held, state, client, publish(topic), () => acked.push(topic))
      expect(started).toEqual(['tele/p1/a'])
      finish.shift()?.()
      await new Promise((r) => setImmediate(r))
      expect(acked).toEqual(['tele/p1/a'])
      expect(started).toEqual(['tele/p1/a', 'tele/p1/b'])
      finish.shift()?.()
      await new Promise((r) => setImmediate(r))
      expect(acked).toEqual(['tele/p1/a', 'tele/p1/b'])
    })
  })

  describe('authorizeSubscribe', () => {
    it('grants what the access rules allow and answers null (0x80) otherwise, counted by role', async () => {
      const { context, metrics } = contextOf()
      const state = newHookState(4)
      const client = fakeClient('c')
      state.principals.set(client, consumer)
      const granted: Subscription = { topic: 'veil/svc/#', qos: 1 }
      expect(await called((cb) => authorizeSubscribe(context, state, client, granted, cb))).toEqual([null, granted])
      expect(await called((cb) => authorizeSubscribe(context, state, client, { topic: '#', qos: 1 }, cb))).toEqual([
        null,
        null,
      ])
      expect(await called((cb) => authorizeSubscribe(context, state, fakeClient('stranger'), granted, cb))).toEqual([
        null,
        null,
      ])
      expect(await refusals(metrics, 'subscribe')).toEqual({ consumer: 1, unknown: 1 })
    })
  })

  describe('authorizeForward', () => {
    const forwarded = (topic: string, clientId?: string): AedesPublishPacket =>
      ({
        ...publish(topic),
        brokerId: 'veil',
        brokerCounter: 1,
        ...(clientId === undefined ? {} : { clientId }),
      }) as AedesPublishPacket

    it("delivers Veil's own filtered copies to anyone, and $SYS only to the operator", () => {
      const { context } = contextOf()
      const state = newHookState(4)
      const c = fakeClient('c')
      const a = fakeClient('a')
      state.principals.set(c, consumer)
      state.principals.set(a, admin)
      const copy = forwarded('veil/svc/smart_plug/p1/state')
      expect(authorizeForward(context, state, c, copy)).toBe(copy)
      expect(authorizeForward(context, state, c, forwarded('$SYS/veil/clients/connected'))).toBeNull()
      const sys = forwarded('$SYS/veil/clients/connected')
      expect(authorizeForward(context, state, a, sys)).toBe(sys)
      expect(authorizeForward(context, state, c, forwarded('tele/p1/state'))).toBeNull()
    })

    it("decides a client's own packet again from the publisher's principal, found by its client id", () => {
      const { context } = contextOf()
      const state = newHookState(4)
      const publisher = fakeClient('p1')
      const a = fakeClient('a')
      state.principals.set(publisher, device)
      state.principals.set(a, admin)
      const raw = forwarded('tele/p1/state', 'p1')
      // Before clientReady the id names nobody: refused.
      expect(authorizeForward(context, state, a, raw)).toBeNull()
      clientReady(state, publisher)
      expect(authorizeForward(context, state, a, raw)).toBe(raw)
      expect(authorizeForward(context, state, fakeClient('stranger'), raw)).toBeNull()
      clientDisconnected(state, publisher)
      expect(authorizeForward(context, state, a, raw)).toBeNull()
    })
  })

  it("keeps a takeover's principal under the id when the replaced connection ends after it", () => {
    const state = newHookState(4)
    const first = fakeClient('p1')
    const second = fakeClient('p1')
    state.principals.set(first, device)
    state.principals.set(second, { ...device })
    clientReady(state, first)
    clientReady(state, second)
    clientDisconnected(state, first)
    expect(state.byId.get('p1')).toBe(state.principals.get(second))
    clientDisconnected(state, second)
    expect(state.byId.has('p1')).toBe(false)
  })
})
