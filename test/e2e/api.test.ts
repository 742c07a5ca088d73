/**
 * The subjects and consent API (/api/v1/, schemas/api.openapi.json) on a running gateway: bearer token, bodies
 * validated against the OpenAPI document, every error a JSON body with a code and a message, a consent change in
 * force before the response returns, and hostile requests (fast-check) that change nothing and break nothing.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { purposeBit } from '../../gateway/src/consent/book.ts'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'

const TOKEN = 'test-api-token-0123456789'
const POLICIES = join(import.meta.dirname, 'testdata/policies-consent')
let gw: TestGateway

beforeAll(async () => {
  gw = await startGateway({ policies: POLICIES, security: { apiToken: TOKEN } })
})
afterAll(() => gw.close())

async function call(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: unknown }> {
  const init: RequestInit = { method, headers: { authorization: `Bearer ${TOKEN}`, ...headers } }
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body)
    ;(init.headers as Record<string, string>)['content-type'] ??= 'application/json'
  }
  const res = await fetch(`${gw.httpUrl}${path}`, init)
  const text = await res.text()
  return { status: res.status, json: text === '' ? undefined : (JSON.parse(text) as unknown) }
}

const files = (): string[] =>
  ['subjects.json', 'consent.jsonl']
    .map((f) => join(gw.dataDir, f))
    .map((f) => (existsSync(f) ? readFileSync(f, 'utf8') : ''))

describe('subjects and consent API', () => {
  it('refuses a missing or wrong token with 401 and a JSON error', async () => {
    for (const authorization of [undefined, 'Bearer nope', `Basic ${TOKEN}`]) {
      const res = await fetch(`${gw.httpUrl}/api/v1/subjects`, {
        headers: authorization === undefined ? {} : { authorization },
      })
      expect(res.status).toBe(401)
      expect(await res.json()).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } })
    }
  })

  it('adds a subject, grants a consent that is in force before the response returns, and withdraws it', async () => {
    const added = await call('POST', '/api/v1/subjects', { name: 'alice', devices: ['tasmota:tasmota_a11ce1'] })
    expect(added).toEqual({
      status: 201,
      json: { name: 'alice', devices: ['tasmota:tasmota_a11ce1'], minor: false, created: expect.any(String) },
    })
    expect((await call('GET', '/api/v1/subjects')).json).toMatchObject({ subjects: [{ name: 'alice' }] })
    const bit = purposeBit('energy_15min')
    const grants = (): boolean =>
      ((gw.gateway.consent.of('tasmota', 'tasmota_a11ce1').granted[0] as number) & bit) !== 0
    expect(grants()).toBe(false)
    const granted = await call('POST', '/api/v1/subjects/alice/consents', {
      purpose: 'energy_15min',
      granted: true,
      domain: 'svc',
    })
    expect(granted.status).toBe(201)
    expect(granted.json).toMatchObject({
      inForce: { svc: ['energy_15min', 'share_svc'] },
      history: [{ purpose: 'energy_15min', granted: true, domain: 'svc', by: 'subject' }],
    })
    expect(grants()).toBe(true)
    expect(
      (await call('POST', '/api/v1/subjects/alice/consents', { purpose: 'energy_15min', granted: false })).status,
    ).toBe(201)
    expect(grants()).toBe(false)
    expect((await call('GET', '/api/v1/subjects/alice')).json).toMatchObject({
      name: 'alice',
      history: [{ granted: true }, { granted: false }],
    })
  })

  it('answers bad requests with their code and changes nothing', async () => {
    await call('POST', '/api/v1/subjects', { name: 'kid', devices: ['tasmota:tasmota_c41d01'], minor: true })
    const before = files()
    const cases: [string, string, unknown, Record<string, string>, number, string][] = [
      ['POST', '/api/v1/subjects', '{not json', {}, 400, 'invalid_json'],
      ['POST', '/api/v1/subjects', { name: 'bob', devices: ['tasmota:x'], extra: 1 }, {}, 400, 'invalid_body'],
      ['POST', '/api/v1/subjects', { name: 'Bob!', devices: ['tasmota:x'] }, {}, 400, 'invalid_body'],
      ['POST', '/api/v1/subjects', { name: 'bob', devices: ['nosuch:x'] }, {}, 422, 'refused'],
      ['POST', '/api/v1/subjects', { name: 'bob', devices: ['tasmota:tasmota_a11ce1'] }, {}, 422, 'refused'],
      ['POST', '/api/v1/subjects', { name: 'alice', devices: ['tasmota:y'] }, {}, 409, 'conflict'],
      ['POST', '/api/v1/subjects', { name: 'household', devices: ['tasmota:y'] }, {}, 409, 'conflict'],
      [
        'POST',
        '/api/v1/subjects',
        { name: 'bob', devices: ['tasmota:x'] },
        { 'content-type': 'text/plain' },
        415,
        'unsupported_media_type',
      ],
      [
        'POST',
        '/api/v1/subjects',
        JSON.stringify({ name: 'bob', devices: ['x'.repeat(70_000)] }),
        {},
        413,
        'payload_too_large',
      ],
      ['POST', '/api/v1/subjects/alice/consents', { purpose: 'nosuch', granted: true }, {}, 422, 'refused'],
      ['POST', '/api/v1/subjects/alice/consents', { purpose: 'energy_15min', granted: 'yes' }, {}, 400, 'invalid_body'],
      ['POST', '/api/v1/subjects/kid/consents', { purpose: 'energy_15min', granted: true }, {}, 422, 'refused'],
      ['POST', '/api/v1/subjects/nobody/consents', { purpose: 'energy_15min', granted: true }, {}, 404, 'not_found'],
      ['GET', '/api/v1/subjects/nobody', undefined, {}, 404, 'not_found'],
      ['GET', '/api/v1/elsewhere', undefined, {}, 404, 'not_found'],
      ['PUT', '/api/v1/subjects', { name: 'bob' }, {}, 405, 'method_not_allowed'],
      ['DELETE', '/api/v1/subjects/household', undefined, {}, 422, 'refused'],
    ]
    for (const [method, path, body, headers, status, code] of cases) {
      const res = await call(method, path, body, headers)
      expect({ method, path, status: res.status, json: res.json }).toEqual({
        method,
        path,
        status,
        json: { error: { code, message: expect.any(String) } },
      })
    }
    // A minor's consent from a guardian is accepted.
    expect(files()).toEqual(before)
    expect(
      (await call('POST', '/api/v1/subjects/kid/consents', { purpose: 'energy_15min', granted: true, by: 'guardian' }))
        .status,
    ).toBe(201)
  })

  it('fuzz: arbitrary methods, paths and bodies get a JSON error or a success, never a crash, and the gateway stays up', async () => {
    const segment = fc.oneof(
      fc.constantFrom('subjects', 'alice', 'consents', 'household', '..', '%2e%2e', '%00'),
      fc.string({ maxLength: 12 }),
    )
    const path = fc
      .array(segment, { maxLength: 4 })
      .map((parts) => `/api/v1/${parts.map(encodeURIComponent).join('/')}`)
    const body = fc.oneof(
      fc.constant(undefined),
      fc.json({ maxDepth: 3 }),
      fc.string({ maxLength: 200 }),
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
    )
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('GET', 'POST', 'DELETE', 'PATCH'), path, body, async (method, p, b) => {
        const res = await call(method, p, method === 'GET' ? undefined : b)
        // fetch resolves dot segments: a path that leaves /api/ is the other endpoints' business.
        const inApi = new URL(p, gw.httpUrl).pathname.startsWith('/api/')
        if (inApi && res.status >= 400)
          expect(res.json).toEqual({ error: { code: expect.any(String), message: expect.any(String) } })
        expect([200, 201, 204, 400, 404, 405, 409, 413, 415, 422]).toContain(res.status)
      }),
      { numRuns: 150 },
    )
    expect((await fetch(`${gw.httpUrl}/healthz`)).status).toBe(200)
  })
})
