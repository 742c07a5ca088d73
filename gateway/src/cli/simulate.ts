import { profiles, runSimulators } from '../../../simulators/index.ts'
import { VeilError } from '../errors.ts'
import { parse } from './args.ts'

/** `veil simulate`: publish a profile's realistic stream to a broker, bounded by --duration or --count. */
export async function simulate(args: readonly string[]): Promise<number> {
  const { values } = parse(args, {
    profile: { type: 'string', multiple: true },
    devices: { type: 'string' },
    rate: { type: 'string' },
    url: { type: 'string' },
    duration: { type: 'string' },
    count: { type: 'string' },
    seed: { type: 'string' },
    username: { type: 'string' },
    password: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  })
  if (values.help) {
    process.stdout.write(
      `Usage: veil simulate --profile NAME [--devices N] [--rate MSG_PER_S] [--url URL] [--duration S] [--count N]\n       [--username NAME] [--password PW | VEIL_SIM_PASSWORD]: one account for every simulated device\nProfiles: ${Object.keys(profiles).join(', ')}\n`,
    )
    return 0
  }
  const names = values.profile ?? []
  if (names.length === 0)
    throw new VeilError('VEIL_ERR_USAGE', `simulate: --profile is required; one of ${Object.keys(profiles).join(', ')}`)
  for (const name of names) {
    if (!(name in profiles))
      throw new VeilError(
        'VEIL_ERR_USAGE',
        `simulate: unknown profile ${name}; one of ${Object.keys(profiles).join(', ')}`,
      )
  }
  const number = (text: string | undefined, flag: string, fallback: number): number => {
    if (text === undefined) return fallback
    const n = Number(text)
    if (!Number.isFinite(n) || n <= 0)
      throw new VeilError('VEIL_ERR_USAGE', `simulate: ${flag} must be a positive number`)
    return n
  }
  const controller = new AbortController()
  process.once('SIGINT', () => controller.abort())
  process.once('SIGTERM', () => controller.abort())
  const run = runSimulators({
    url: values.url ?? 'mqtt://127.0.0.1:1883',
    profiles: names,
    devices: number(values.devices, '--devices', 1),
    ratePerSecond: number(values.rate, '--rate', 5),
    durationMs: values.duration === undefined ? undefined : number(values.duration, '--duration', 1) * 1000,
    maxMessages: values.count === undefined ? undefined : number(values.count, '--count', 1),
    seed: values.seed === undefined ? undefined : Number(values.seed),
    // A password on the command line shows in `ps`: the environment is the better place for it.
    ...(values.username === undefined ? {} : { username: values.username }),
    ...((values.password ?? process.env.VEIL_SIM_PASSWORD) === undefined
      ? {}
      : { password: values.password ?? process.env.VEIL_SIM_PASSWORD }),
    signal: controller.signal,
  })
  const { published } = await run.done
  process.stderr.write(`veil simulate: published ${published} messages\n`)
  return 0
}
