import { randomBytes } from 'node:crypto'
import { builtinPlugins } from '../builtins.ts'
import { overridesFromEnv, profilesOf, resolveConfig, type GatewayConfig } from '../config/config.ts'
import { ConsentLog } from '../consent/log.ts'
import { HOUSEHOLD, MINOR_DOMAINS, deviceRefText, type ConsentRecord, type Subject } from '../consent/model.ts'
import { SubjectRegistry } from '../consent/registry.ts'
import { forgetSubject } from '../consent/forget.ts'
import { SubjectKeys } from '../keys/subject-keys.ts'
import { loadOrCreateMasterKey } from '../keys/keyring.ts'
import {
  addSubject,
  consentsInForce,
  domainOf,
  knownSubject,
  offeredByDomain,
  recordConsent,
  sourceOf,
} from '../consent/changes.ts'
import { VeilError } from '../errors.ts'
import { Keyring } from '../keys/keyring.ts'
import { loadPolicySet } from '../policy/load.ts'
import { DOMAINS, type Domain } from '../sdk/model.ts'
import { Classifier } from '../streams/classifier.ts'
import { parse } from './args.ts'

const COMMON = {
  config: { type: 'string' },
  'data-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

const SUBJECT_OPTIONS = {
  ...COMMON,
  device: { type: 'string', multiple: true },
  minor: { type: 'boolean' },
  regions: { type: 'string' },
  replace: { type: 'boolean' },
} as const
const CONSENT_OPTIONS = { ...COMMON, domain: { type: 'string' }, by: { type: 'string' } } as const

const SUBJECT_USAGE =
  'Usage: veil subject add NAME --device PROFILE:ID [--device ...] [--minor] [--regions EU[,US]] [--replace] | veil subject list | veil subject show NAME | veil subject remove NAME | veil subject forget NAME  [--data-dir DIR] [--config FILE]\n'
const CONSENT_USAGE =
  'Usage: veil consent grant|withdraw SUBJECT PURPOSE [--domain svc|ana|3p] [--by subject|guardian|admin] | veil consent show SUBJECT  [--data-dir DIR] [--config FILE]\n'

const APPLIED = 'A running gateway applies it at once (it watches the data directory) or on SIGHUP.\n'

/**
 * `veil subject add|list|show|remove`: the persons devices belong to, in the data directory's subjects.json. Every
 * check runs before anything is written, so a refused command leaves the files as they were.
 */
export async function subject(args: readonly string[]): Promise<number> {
  const [sub, ...rest] = args
  const { values, positionals } = parse(rest, SUBJECT_OPTIONS, true)
  if (values.help || sub === undefined) {
    process.stdout.write(SUBJECT_USAGE)
    return sub === undefined ? 2 : 0
  }
  if (
    sub !== 'add' &&
    (values.device !== undefined ||
      values.minor !== undefined ||
      values.regions !== undefined ||
      values.replace !== undefined)
  ) {
    throw new VeilError(
      'VEIL_ERR_USAGE',
      `subject ${sub}: --device, --minor, --regions and --replace belong to subject add`,
    )
  }
  const config = configOf(values)
  const registry = SubjectRegistry.open(config.dataDir, profilesOf(config))
  const log = ConsentLog.open(config.dataDir)
  switch (sub) {
    case 'add': {
      const name = one(positionals, 'subject add')
      const devices = (values.device ?? []).map((text) => {
        const ref = registry.parseDevice(text)
        if (typeof ref === 'string') throw new VeilError('VEIL_ERR_USAGE', `subject add ${name}: --device ${ref}`)
        return ref
      })
      const regions = values.regions === undefined ? undefined : values.regions.split(',').map((r) => r.trim())
      const added = addSubject(
        registry,
        log,
        { name, devices, minor: values.minor === true, regions },
        values.replace === true,
      )
      process.stdout.write(
        `${values.replace === true ? 'replaced' : 'added'} subject ${added.name}: ${describe(added)}\n`,
      )
      process.stderr.write(APPLIED)
      return 0
    }
    case 'list': {
      none(positionals, 'subject list')
      for (const s of registry.list())
        process.stdout.write(
          `${s.name}\t${s.devices.length}\t${s.minor ? 'minor' : 'adult'}\t${s.regions?.join(',') ?? 'any'}\n`,
        )
      return 0
    }
    case 'show': {
      const s = knownSubject(registry, one(positionals, 'subject show'))
      const devices = s.name === HOUSEHOLD ? 'every device no subject claims' : s.devices.map(deviceRefText).join(', ')
      process.stdout.write(
        `subject ${s.name}\ndevices: ${devices}\nminor: ${s.minor ? 'yes' : 'no'}\nregions: ${s.regions?.join(', ') ?? 'any'}\n`,
      )
      process.stdout.write(consentLines(s, log.records(), config.optIn, offered(config)))
      return 0
    }
    case 'forget': {
      const s = knownSubject(registry, one(positionals, 'subject forget'))
      const keys = SubjectKeys.open(config.dataDir, loadOrCreateMasterKey(config.dataDir))
      const result = forgetSubject(config.dataDir, s, { keys, registry }, { keepJournal: true })
      process.stdout.write(
        `forgot subject ${s.name}: ${result.keysShredded ? 'its queued copies can no longer be read' : 'nothing of it was queued'}; its devices belong to the household again\n`,
      )
      process.stderr.write(
        'A running gateway forgets what its operators hold of these devices at once (it watches the data directory); a stopped one at its next start.\n',
      )
      return 0
    }
    case 'remove': {
      const name = one(positionals, 'subject remove')
      if (name === HOUSEHOLD)
        throw new VeilError(
          'VEIL_ERR_USAGE',
          `${HOUSEHOLD} is reserved: it is every device no subject claims and cannot be removed`,
        )
      if (!registry.remove(name)) throw new VeilError('VEIL_ERR_USAGE', `no subject ${name} in ${registry.file}`)
      process.stdout.write(
        `removed subject ${name}; its devices belong to the household again; its consent history stays in ${log.file}\n`,
      )
      process.stderr.write(APPLIED)
      return 0
    }
    default:
      throw new VeilError('VEIL_ERR_USAGE', `subject: expected add, list, show, remove or forget, not ${sub}`)
  }
}

/** `veil consent grant|withdraw|show`: appends to the data directory's consent.jsonl, never rewriting it. */
export async function consent(args: readonly string[]): Promise<number> {
  const [sub, ...rest] = args
  const { values, positionals } = parse(rest, CONSENT_OPTIONS, true)
  if (values.help || sub === undefined) {
    process.stdout.write(CONSENT_USAGE)
    return sub === undefined ? 2 : 0
  }
  const config = configOf(values)
  const registry = SubjectRegistry.open(config.dataDir, profilesOf(config))
  const log = ConsentLog.open(config.dataDir)
  switch (sub) {
    case 'grant':
    case 'withdraw': {
      if (positionals.length !== 2) throw new VeilError('VEIL_ERR_USAGE', `consent ${sub}: expected SUBJECT PURPOSE`)
      const s = knownSubject(registry, positionals[0] as string)
      const purpose = positionals[1] as string
      const domain = domainOf(values.domain)
      const by = sourceOf(values.by)
      const granted = sub === 'grant'
      const byDomain = offered(config)
      recordConsent(registry, log, { subject: s.name, purpose, domain, granted, by }, byDomain)
      process.stdout.write(
        `${granted ? 'granted' : 'withdrew'} ${purpose} for ${s.name} ${domain === undefined ? 'in every domain' : `in ${domain}`} (by ${by})\n`,
      )
      process.stdout.write(currentLines(s, log.records(), config.optIn, byDomain))
      if (granted && s.minor && (domain === undefined || MINOR_DOMAINS.has(domain))) {
        process.stderr.write(
          `${s.name} is a minor: location, health and camera data never leave for ${[...MINOR_DOMAINS].join(' or ')}, whatever is granted.\n`,
        )
      }
      process.stderr.write(APPLIED)
      return 0
    }
    case 'show': {
      const s = knownSubject(registry, one(positionals, 'consent show'))
      process.stdout.write(consentLines(s, log.records(), config.optIn, offered(config)))
      return 0
    }
    default:
      throw new VeilError('VEIL_ERR_USAGE', `consent: expected grant, withdraw or show, not ${sub}`)
  }
}

function configOf(values: { config?: string | undefined; 'data-dir'?: string | undefined }): GatewayConfig {
  return resolveConfig(
    builtinPlugins,
    { config: values.config, dataDir: values['data-dir'] },
    overridesFromEnv(process.env),
  )
}

/** The purposes the policies offer, per domain: what a person can grant or withdraw there. */
function offered(config: GatewayConfig): Map<Domain, Set<string>> {
  const classifier = new Classifier(profilesOf(config))
  // A throwaway key, as `veil policy check` uses: reading the policies must not create or read the master key.
  const keyring = new Keyring(randomBytes(32), new Map())
  const set = loadPolicySet(config.policies, {
    classifier,
    operators: builtinPlugins.operators,
    keyring,
    dataDir: config.dataDir,
    variables: config.variables,
  })
  return offeredByDomain(set.documents.values())
}

function describe(s: Subject): string {
  const devices = s.devices.map(deviceRefText)
  return `${devices.length} device${devices.length === 1 ? '' : 's'} (${devices.join(', ')})${s.minor ? ', minor' : ''}, regions ${s.regions?.join(', ') ?? 'any'}`
}

/** The purposes in force per domain, derived from every record the way the filter stage derives them. */
function currentLines(
  s: Subject,
  records: readonly ConsentRecord[],
  defaults: ReadonlySet<string>,
  byDomain: Map<Domain, Set<string>>,
): string {
  // Only what a policy offers there: a purpose granted in every domain means nothing where no policy names it.
  const inForce = consentsInForce(s, records, defaults, byDomain)
  const lines = DOMAINS.map((d) => `  ${d}: ${inForce[d].join(', ') || '(none)'}`)
  return `consents in force:\n${lines.join('\n')}\n`
}

function consentLines(
  s: Subject,
  records: readonly ConsentRecord[],
  defaults: ReadonlySet<string>,
  byDomain: Map<Domain, Set<string>>,
): string {
  const mine = records.filter((r) => r.subject === s.name)
  const history = mine.map(
    (r) =>
      `  ${r.time} ${r.granted ? 'grant' : 'withdraw'} ${r.purpose} ${r.domain ?? 'every domain'} by ${r.by}${s.minor && r.granted && r.by === 'subject' ? ' (ignored: a minor)' : ''}`,
  )
  return `${currentLines(s, records, defaults, byDomain)}history:\n${history.length === 0 ? '  (none)' : history.join('\n')}\n`
}

function one(positionals: readonly string[], what: string): string {
  if (positionals.length !== 1 || positionals[0] === '')
    throw new VeilError('VEIL_ERR_USAGE', `${what}: expected one name`)
  return positionals[0] as string
}

function none(positionals: readonly string[], what: string): void {
  if (positionals.length !== 0) throw new VeilError('VEIL_ERR_USAGE', `${what}: takes no names`)
}
