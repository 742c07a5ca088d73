import { AccessControl } from '../auth/access.ts'
import { builtinPlugins } from '../builtins.ts'
import { CredentialStore, type Account, type Role } from '../auth/store.ts'
import { overridesFromEnv, resolveConfig } from '../config/config.ts'
import { VeilError } from '../errors.ts'
import { DOMAINS, isDomain } from '../sdk/model.ts'
import { Classifier } from '../streams/classifier.ts'
import { parse } from './args.ts'

const OPTIONS = {
  config: { type: 'string' },
  'data-dir': { type: 'string' },
  profile: { type: 'string' },
  role: { type: 'string' },
  domain: { type: 'string' },
  replace: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const

/**
 * `veil device add|list|remove` and `veil user add|list|remove`: the broker accounts in the data directory. A new
 * password is printed once, on stdout; the store keeps only its scrypt hash. A running gateway picks changes up on
 * SIGHUP or POST /-/reload.
 */
export async function accounts(kind: 'device' | 'user', args: readonly string[]): Promise<number> {
  const [sub, ...rest] = args
  const { values, positionals } = parse(rest, OPTIONS, true)
  if (values.help || sub === undefined) {
    process.stdout.write(kind === 'device' ? DEVICE_USAGE : USER_USAGE)
    return sub === undefined ? 2 : 0
  }
  const config = resolveConfig(
    builtinPlugins,
    { config: values.config, dataDir: values['data-dir'] },
    overridesFromEnv(process.env),
  )
  const store = CredentialStore.open(config.dataDir)
  const ofKind = (a: Account): boolean => (kind === 'device' ? a.role === 'device' : a.role !== 'device')
  switch (sub) {
    case 'add': {
      const name = one(positionals, `${kind} add`)
      const entry: { name: string; role: Role; profile?: string; domain?: (typeof DOMAINS)[number] } =
        kind === 'device' ? deviceEntry(name, values.profile) : userEntry(name, values.role, values.domain)
      const existing = store.get(name)
      if (existing !== undefined && values.replace === true && !ofKind(existing)) {
        throw new VeilError(
          'VEIL_ERR_USAGE',
          `${name} is a ${existing.role} account; replace it with veil ${existing.role === 'device' ? 'device' : 'user'} add`,
        )
      }
      const password = await store.add(entry, { replace: values.replace === true })
      const what =
        entry.role === 'device'
          ? `device ${name} (profile ${entry.profile})`
          : `${entry.role} ${name}${entry.domain === undefined ? '' : ` (domain ${entry.domain})`}`
      process.stdout.write(
        `${existing === undefined ? 'added' : 'replaced'} ${what}\nusername: ${name}\npassword: ${password}\n`,
      )
      process.stderr.write(
        `The password is shown only this once; ${store.file} keeps its scrypt hash. Reload a running gateway (SIGHUP) to use it.\n`,
      )
      return 0
    }
    case 'list': {
      for (const a of store.list().filter(ofKind)) {
        const detail = a.role === 'device' ? `profile=${a.profile}` : a.role === 'consumer' ? `domain=${a.domain}` : ''
        process.stdout.write(`${a.name}\t${a.role}\t${detail}\t${a.created}\n`)
      }
      return 0
    }
    case 'remove': {
      const name = one(positionals, `${kind} remove`)
      const existing = store.get(name)
      if (existing === undefined || !ofKind(existing))
        throw new VeilError('VEIL_ERR_USAGE', `no ${kind} ${name} in ${store.file}`)
      store.remove(name)
      process.stdout.write(`removed ${name}\n`)
      return 0
    }
    default:
      throw new VeilError('VEIL_ERR_USAGE', `${kind}: expected add, list or remove, not ${sub}`)
  }
}

const DEVICE_USAGE =
  'Usage: veil device add DEVICE_ID --profile NAME [--replace] | veil device list | veil device remove DEVICE_ID  [--data-dir DIR] [--config FILE]\n'
const USER_USAGE =
  'Usage: veil user add NAME --role consumer --domain svc|ana|3p | --role local|admin [--replace] | veil user list | veil user remove NAME  [--data-dir DIR] [--config FILE]\n'

function one(positionals: readonly string[], what: string): string {
  if (positionals.length !== 1 || positionals[0] === '')
    throw new VeilError('VEIL_ERR_USAGE', `${what}: expected one name`)
  return positionals[0] as string
}

function deviceEntry(name: string, profile: string | undefined): { name: string; role: Role; profile: string } {
  if (profile === undefined) throw new VeilError('VEIL_ERR_USAGE', 'device add: --profile NAME is required')
  const access = new AccessControl(builtinPlugins.profiles, new Classifier(builtinPlugins.profiles))
  const problem = access.deviceProblem(name, profile)
  if (problem !== undefined) throw new VeilError('VEIL_ERR_USAGE', `device add ${name}: ${problem}`)
  return { name, role: 'device', profile }
}

function userEntry(
  name: string,
  role: string | undefined,
  domain: string | undefined,
): { name: string; role: Role; domain?: (typeof DOMAINS)[number] } {
  if (role !== 'consumer' && role !== 'local' && role !== 'admin')
    throw new VeilError(
      'VEIL_ERR_USAGE',
      'user add: --role must be consumer, local or admin (devices: veil device add)',
    )
  if (role === 'consumer') {
    if (domain === undefined || !isDomain(domain))
      throw new VeilError('VEIL_ERR_USAGE', `user add: a consumer needs --domain, one of ${DOMAINS.join(', ')}`)
    return { name, role, domain }
  }
  if (domain !== undefined) throw new VeilError('VEIL_ERR_USAGE', `user add: --domain applies to consumers only`)
  return { name, role }
}
