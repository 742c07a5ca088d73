import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Ajv, type ErrorObject } from 'ajv'
import openapi from '../../../schemas/api.openapi.json' with { type: 'json' }
import { addSubject, consentsInForce, knownSubject, recordConsent } from '../consent/changes.ts'
import { ConsentLog } from '../consent/log.ts'
import { HOUSEHOLD, deviceRefText, type ConsentSource, type Subject } from '../consent/model.ts'
import { SubjectRegistry } from '../consent/registry.ts'
import { VeilError } from '../errors.ts'
import type { Domain } from '../sdk/model.ts'
import type { ProfileDefinition } from '../sdk/profile.ts'

/** What the API changes, as the audit records it: the action and a keyed hash of the subject id. */
export type ApiAction =
  | 'subject_added'
  | 'subject_removed'
  | 'subject_forgotten'
  | 'consent_granted'
  | 'consent_withdrawn'

export interface ApiOptions {
  readonly token: string
  readonly dataDir: string
  readonly profiles: readonly ProfileDefinition[]
  /** The household's defaults (configuration `optIn`). */
  readonly defaults: ReadonlySet<string>
  /** The purposes the policies in force offer, per domain. */
  readonly offered: () => Map<Domain, Set<string>>
  /** After every change: the gateway compiles the new consent before the response is sent. */
  readonly changed: () => void
  readonly audit: (action: ApiAction, subjectId: string) => void
  /** Erases the subject in one step (Gateway.forget); false for an unknown one. */
  readonly forget: (name: string) => boolean
}

/** A request body larger than this is refused before it is parsed. */
const MAX_BODY = 64 * 1024
const NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/
const ROUTE = /^\/api\/v1\/subjects(?:\/([^/]+)(\/consents|\/forget)?)?$/

const ajv = new Ajv({ allErrors: true, strict: false, useDefaults: true })
const schemas = openapi.components.schemas
interface NewSubjectBody {
  name: string
  devices: string[]
  minor: boolean
  regions?: string[]
}
interface ConsentChangeBody {
  purpose: string
  granted: boolean
  domain?: Domain
  by: ConsentSource
}
const validNewSubject = ajv.compile<NewSubjectBody>(schemas.NewSubject)
const validConsentChange = ajv.compile<ConsentChangeBody>(schemas.ConsentChange)

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

const digest = (text: string): Buffer => createHash('sha256').update(text).digest()

/**
 * /api/v1/: subjects and consent for a companion app or the home's admin, over the same files and rules as
 * `veil subject` and `veil consent` (consent/changes.ts). Bearer token compared in constant time; bodies validated
 * against schemas/api.openapi.json; every error a JSON body with a code and a message; nothing a caller sends can
 * throw past the handler.
 */
export function apiHandler(options: ApiOptions): (req: IncomingMessage, res: ServerResponse, path: string) => void {
  const tokenDigest = digest(options.token)
  return (req, res, path) => {
    handle(req, path, options, tokenDigest).then(
      ({ status, body }) => send(res, status, body),
      (err: unknown) => {
        if (err instanceof ApiError) send(res, err.status, { error: { code: err.code, message: err.message } })
        else if (err instanceof VeilError) send(res, 422, { error: { code: 'refused', message: err.message } })
        else send(res, 500, { error: { code: 'internal_error', message: 'the request could not be completed' } })
      },
    )
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return
  if (body === undefined) res.writeHead(status).end()
  else res.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`)
}

async function handle(
  req: IncomingMessage,
  path: string,
  options: ApiOptions,
  tokenDigest: Buffer,
): Promise<{ status: number; body: unknown }> {
  const match = /^Bearer ([^\s]+)$/.exec(req.headers.authorization ?? '')
  if (match === null || !timingSafeEqual(digest(match[1] as string), tokenDigest)) {
    throw new ApiError(401, 'unauthorized', 'a valid bearer token is required')
  }
  const route = ROUTE.exec(path)
  if (route === null) throw new ApiError(404, 'not_found', `no such resource: ${path.slice(0, 100)}`)
  const name = route[1] === undefined ? undefined : decodeURIComponent(route[1])
  if (name !== undefined && !NAME.test(name)) throw new ApiError(404, 'not_found', 'no subject of that name')
  const consents = route[2] === '/consents'
  const forget = route[2] === '/forget'
  const method = req.method ?? 'GET'
  const registry = SubjectRegistry.open(options.dataDir, options.profiles)
  const log = ConsentLog.open(options.dataDir)

  if (name === undefined) {
    if (method === 'GET') return { status: 200, body: { subjects: registry.list().map(subjectJson) } }
    if (method !== 'POST') throw new ApiError(405, 'method_not_allowed', 'GET or POST')
    const body = await jsonBody(req, validNewSubject)
    if (body.name === HOUSEHOLD) throw new ApiError(409, 'conflict', `${HOUSEHOLD} is reserved`)
    if (registry.get(body.name) !== undefined) throw new ApiError(409, 'conflict', `a subject ${body.name} exists`)
    const devices = body.devices.map((text, i) => {
      const ref = registry.parseDevice(text)
      if (typeof ref === 'string') throw new ApiError(422, 'refused', `/devices/${i}: ${ref}`)
      return ref
    })
    const added = addSubject(registry, log, { name: body.name, devices, minor: body.minor, regions: body.regions })
    options.changed()
    options.audit('subject_added', added.id)
    return { status: 201, body: subjectJson(added) }
  }

  const subject = known(registry, name)
  if (forget) {
    if (method !== 'POST') throw new ApiError(405, 'method_not_allowed', 'POST')
    if (subject.name === HOUSEHOLD) throw new ApiError(422, 'refused', `${HOUSEHOLD} is every device no subject claims`)
    if (!options.forget(subject.name)) throw new ApiError(404, 'not_found', 'no subject of that name')
    options.audit('subject_forgotten', subject.id)
    return { status: 204, body: undefined }
  }
  if (!consents) {
    if (method === 'GET')
      return { status: 200, body: { ...subjectJson(subject), ...consentJson(subject, log, options) } }
    if (method !== 'DELETE') throw new ApiError(405, 'method_not_allowed', 'GET or DELETE')
    if (subject.name === HOUSEHOLD) throw new ApiError(422, 'refused', `${HOUSEHOLD} is every device no subject claims`)
    registry.remove(subject.name)
    options.changed()
    options.audit('subject_removed', subject.id)
    return { status: 204, body: undefined }
  }
  if (method === 'GET') return { status: 200, body: consentJson(subject, log, options) }
  if (method !== 'POST') throw new ApiError(405, 'method_not_allowed', 'GET or POST')
  const body = await jsonBody(req, validConsentChange)
  recordConsent(
    registry,
    log,
    { subject: subject.name, purpose: body.purpose, domain: body.domain, granted: body.granted, by: body.by },
    options.offered(),
  )
  options.changed()
  options.audit(body.granted ? 'consent_granted' : 'consent_withdrawn', subject.id)
  return { status: 201, body: consentJson(subject, log, options) }
}

function known(registry: SubjectRegistry, name: string): Subject {
  try {
    return knownSubject(registry, name)
  } catch {
    // The list of known names is for the CLI's operator, not for an API caller.
    throw new ApiError(404, 'not_found', 'no subject of that name')
  }
}

function subjectJson(s: Subject): Record<string, unknown> {
  return {
    name: s.name,
    devices: s.devices.map(deviceRefText),
    minor: s.minor,
    ...(s.regions === undefined ? {} : { regions: s.regions }),
    created: s.created,
  }
}

function consentJson(s: Subject, log: ConsentLog, options: ApiOptions): Record<string, unknown> {
  const records = log.records()
  return {
    inForce: consentsInForce(s, records, options.defaults, options.offered()),
    history: records
      .filter((r) => r.subject === s.name)
      .map((r) => ({
        time: r.time,
        purpose: r.purpose,
        ...(r.domain === undefined ? {} : { domain: r.domain }),
        granted: r.granted,
        by: r.by,
      })),
  }
}

async function jsonBody<T>(
  req: IncomingMessage,
  validate: { (value: unknown): value is T; errors?: ErrorObject[] | null },
): Promise<T> {
  const type = req.headers['content-type'] ?? ''
  if (!/^application\/json\b/.test(type)) throw new ApiError(415, 'unsupported_media_type', 'send application/json')
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY) throw new ApiError(413, 'payload_too_large', `bodies are limited to ${MAX_BODY} bytes`)
    chunks.push(chunk)
  }
  let value: unknown
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new ApiError(400, 'invalid_json', 'the body is not JSON')
  }
  if (!validate(value)) {
    const first = validate.errors?.[0]
    throw new ApiError(
      400,
      'invalid_body',
      `${first?.instancePath || '/'}: ${first?.message ?? 'does not match the schema'}`,
    )
  }
  return value
}
