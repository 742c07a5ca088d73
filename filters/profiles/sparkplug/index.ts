import { type Category, defineProfile, type ProfileDefinition, type StreamDefinition } from '#veil/sdk'
import state from './state.schema.json' with { type: 'json' }
import { sparkplugCodec } from './stream.ts'

export interface SparkplugProfileOptions {
  /** The category of Sparkplug traffic whose group no entry of `groups` names. */
  readonly category: Category
  /** Group id to category, for sites whose groups carry different kinds of device. */
  readonly groups?: Readonly<Record<string, Category>>
}

export const DEFAULT_SPARKPLUG_CATEGORY: Category = 'smart_plug'

/**
 * Sparkplug B (spBv1.0). Policies name two streams, `sparkplug/node` (NBIRTH, NDATA, NDEATH) and `sparkplug/device`
 * (DBIRTH, DDATA, DDEATH), plus `sparkplug/state` for host applications' STATE; each message leaves on a topic named
 * after its type (`veil/<domain>/<category>/<pseudonym>/ndata`). The device id is `<group>/<edge node>[/<device>]`:
 * the names only ever become the pseudonym. `level` is the group level of the topic patterns: `+` for every group,
 * or one group's literal id.
 */
function streams(level: string, withState: boolean): Record<string, StreamDefinition> {
  // Sparkplug B ids are case-sensitive: `Line1` and `line1` are two edge nodes, with two pseudonyms and two seqs.
  // Sparkplug timestamps are epoch ms (UTC): the message's and each metric's acquisition time.
  const timeFields = { timestamp: 'epoch_ms', 'metrics[].timestamp': 'epoch_ms' } as const
  const node = (type: string): StreamDefinition => ({
    topics: [`spBv1.0/${level}/${type}/{id}`],
    decoding: sparkplugCodec,
    policyStream: 'node',
    caseSensitiveId: true,
    timeFields,
  })
  const device = (type: string): StreamDefinition => ({
    topics: [`spBv1.0/${level}/${type}/{id}/{id}`],
    decoding: sparkplugCodec,
    policyStream: 'device',
    caseSensitiveId: true,
    timeFields,
  })
  const all: Record<string, StreamDefinition> = {
    nbirth: node('NBIRTH'),
    ndata: node('NDATA'),
    ndeath: node('NDEATH'),
    dbirth: device('DBIRTH'),
    ddata: device('DDATA'),
    ddeath: device('DDEATH'),
  }
  if (withState) all.state = { topics: ['spBv1.0/STATE/{id}'], decoding: 'json', schema: state, caseSensitiveId: true }
  return all
}

/**
 * The Sparkplug profiles for a configuration: one per mapped group (its literal group level is tried before the
 * catch-all), then the catch-all in the default category, which also takes STATE.
 */
export function sparkplugProfiles(
  options: SparkplugProfileOptions = { category: DEFAULT_SPARKPLUG_CATEGORY },
): ProfileDefinition[] {
  const mapped = Object.entries(options.groups ?? {}).map(([group, category]) =>
    defineProfile({
      name: 'sparkplug',
      category,
      description: `Sparkplug B group ${group}`,
      streams: streams(group, false),
    }),
  )
  return [
    ...mapped,
    defineProfile({
      name: 'sparkplug',
      category: options.category,
      description: 'Sparkplug B (spBv1.0/<group>/<type>/<edge node>[/<device>], STATE)',
      streams: streams('{id}', true),
    }),
  ]
}

export default sparkplugProfiles()
