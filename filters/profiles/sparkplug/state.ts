import {
  aliasKey,
  DATA_TYPES,
  metricValue,
  toNumber,
  type DataTypeName,
  type MessageType,
  type SparkplugDocument,
  type SparkplugMetric,
  type WireMetric,
  type WirePayload,
} from './codec.ts'

/** What the state counts (veil_sparkplug_events_total{event}); a closed list, so the label stays bounded. */
export const SPARKPLUG_EVENTS = [
  'birth',
  'death',
  'data_before_birth',
  'stale_death',
  'unknown_alias',
  'seq_gap',
  'node_evicted',
  'device_evicted',
  'birth_too_large',
] as const
export type SparkplugEvent = (typeof SPARKPLUG_EVENTS)[number]

export interface SparkplugLimits {
  /** Edge nodes whose births are remembered; past it the least recently seen one is forgotten (its data then drops until it is born again). */
  readonly maxEdgeNodes: number
  /** Devices remembered per edge node, the same way. */
  readonly maxDevicesPerNode: number
  /** Metrics a birth may declare; a larger birth is refused (invalid) and its node or device stays unborn. */
  readonly maxMetricsPerBirth: number
}

export const DEFAULT_SPARKPLUG_LIMITS: SparkplugLimits = {
  maxEdgeNodes: 10_000,
  maxDevicesPerNode: 1_000,
  maxMetricsPerBirth: 10_000,
}

interface MetricDef {
  readonly name: string
  readonly datatype: number
}

/** The metrics a birth declared: by alias for alias-only DATA, by name for DATA that names them. */
interface Scope {
  readonly aliases: Map<number | string, MetricDef>
  readonly byName: Map<string, MetricDef>
}

interface NodeState extends Scope {
  bdSeq: number | undefined
  seq: number | undefined
  readonly devices: Map<string, Scope>
}

/** Where a message came from, read from its topic by the profile: `spBv1.0/<group>/<type>/<node>[/<device>]`. */
export interface SparkplugAddress {
  readonly group: string
  readonly type: MessageType
  readonly node: string
  readonly device: string | undefined
}

export type StateOutcome = SparkplugDocument | 'no_birth' | 'stale_death' | 'invalid'

/**
 * Veil's view of each edge node and device, as a Sparkplug host application keeps it (specification 3.0.0,
 * chapter 7): NBIRTH and DBIRTH declare the metrics (name, alias, data type), NDATA and DDATA are read through
 * those aliases, NDEATH forgets the node and its devices (only when its bdSeq matches the birth's: an older
 * session's Will must not end the current one), DDEATH the device, and a new NBIRTH starts the node afresh.
 * Data for a node or device without a birth cannot be interpreted and is dropped (`no_birth`), never guessed.
 *
 * The sequence number is checked per edge node (0..255, wrapping): a gap is counted, the message still goes on,
 * because its metrics are named and typed by the birth whatever was lost before it (a host would ask for a rebirth;
 * Veil forwards one way only and has no command path to the node).
 *
 * Memory is bounded: edge nodes and devices per node are kept least recently used first and evicted past their
 * limits (counted), a birth declares at most maxMetricsPerBirth metrics.
 */
export class SparkplugState {
  readonly #nodes = new Map<string, NodeState>()
  readonly #limits: SparkplugLimits
  readonly #count: (event: SparkplugEvent) => void

  constructor(limits: SparkplugLimits = DEFAULT_SPARKPLUG_LIMITS, count: (event: SparkplugEvent) => void = () => {}) {
    this.#limits = limits
    this.#count = count
  }

  get nodeCount(): number {
    return this.#nodes.size
  }

  deviceCount(group: string, node: string): number {
    return this.#nodes.get(nodeKey(group, node))?.devices.size ?? 0
  }

  /** Applies one decoded payload to the state and returns the document with every metric named, or why not. */
  apply(address: SparkplugAddress, payload: WirePayload): StateOutcome {
    const key = nodeKey(address.group, address.node)
    const seq = toNumber(payload.seq)
    if (seq !== undefined && (seq < 0 || seq > 255)) return 'invalid'
    const wire = payload.metrics ?? []
    switch (address.type) {
      case 'NBIRTH': {
        const scope = this.#birthScope(wire)
        if (scope === undefined) return 'invalid'
        const bdSeqDef = scope.byName.get('bdSeq')
        const bdSeqMetric = wire.find((m) => m.name === 'bdSeq')
        const node: NodeState = {
          ...scope,
          bdSeq:
            bdSeqMetric === undefined || bdSeqDef === undefined ? undefined : numeric(bdSeqMetric, bdSeqDef.datatype),
          seq,
          devices: new Map(),
        }
        this.#nodes.delete(key)
        this.#nodes.set(key, node)
        if (this.#nodes.size > this.#limits.maxEdgeNodes) {
          this.#nodes.delete(this.#nodes.keys().next().value as string)
          this.#count('node_evicted')
        }
        this.#count('birth')
        return this.#document(address.type, payload, wire, node)
      }
      case 'NDEATH': {
        const node = this.#nodes.get(key)
        if (node === undefined) return this.#noBirth()
        // The death carries only bdSeq, by name (it is the Will registered before the birth assigned aliases).
        const bdSeqMetric = wire.find((m) => m.name === 'bdSeq')
        const bdSeq =
          bdSeqMetric === undefined
            ? undefined
            : numeric(bdSeqMetric, bdSeqMetric.datatype ?? node.byName.get('bdSeq')?.datatype ?? 4)
        if (bdSeq !== undefined && node.bdSeq !== undefined && bdSeq !== node.bdSeq) {
          this.#count('stale_death')
          return 'stale_death'
        }
        this.#nodes.delete(key)
        this.#count('death')
        return this.#document(address.type, payload, wire, node)
      }
      default: {
        const node = this.#touch(key)
        if (node === undefined) return this.#noBirth()
        if (seq !== undefined) {
          if (node.seq !== undefined && seq !== (node.seq + 1) % 256) this.#count('seq_gap')
          node.seq = seq
        }
        if (address.type === 'NDATA') return this.#document(address.type, payload, wire, node)
        const device = address.device ?? ''
        if (address.type === 'DBIRTH') {
          const scope = this.#birthScope(wire)
          if (scope === undefined) return 'invalid'
          node.devices.delete(device)
          node.devices.set(device, scope)
          if (node.devices.size > this.#limits.maxDevicesPerNode) {
            node.devices.delete(node.devices.keys().next().value as string)
            this.#count('device_evicted')
          }
          this.#count('birth')
          return this.#document(address.type, payload, wire, scope)
        }
        const scope = node.devices.get(device)
        if (scope === undefined) return this.#noBirth()
        node.devices.delete(device)
        if (address.type === 'DDEATH') {
          this.#count('death')
        } else {
          node.devices.set(device, scope)
        }
        return this.#document(address.type, payload, wire, scope)
      }
    }
  }

  #noBirth(): 'no_birth' {
    this.#count('data_before_birth')
    return 'no_birth'
  }

  /** Marks the node most recently used. */
  #touch(key: string): NodeState | undefined {
    const node = this.#nodes.get(key)
    if (node !== undefined) {
      this.#nodes.delete(key)
      this.#nodes.set(key, node)
    }
    return node
  }

  /** The metrics a birth declares; undefined when it is too large or inconsistent (unnamed, repeated alias). */
  #birthScope(wire: readonly WireMetric[]): Scope | undefined {
    if (wire.length > this.#limits.maxMetricsPerBirth) {
      this.#count('birth_too_large')
      return undefined
    }
    const aliases = new Map<number | string, MetricDef>()
    const byName = new Map<string, MetricDef>()
    for (const m of wire) {
      // [tck-id-payloads-name-birth-data-requirement]: births name every metric, with its data type.
      if (m.name === undefined || m.name === '' || m.datatype === undefined) return undefined
      const def: MetricDef = { name: m.name, datatype: m.datatype }
      byName.set(m.name, def)
      if (m.alias !== undefined) {
        const k = aliasKey(m.alias)
        if (aliases.has(k)) return undefined
        aliases.set(k, def)
      }
    }
    return { aliases, byName }
  }

  /** Names every metric; one whose alias the birth did not declare, or whose type Veil cannot filter, is left out. */
  #document(type: MessageType, payload: WirePayload, wire: readonly WireMetric[], scope: Scope): SparkplugDocument {
    const metrics: SparkplugMetric[] = []
    for (const m of wire) {
      let def: MetricDef | undefined
      if (m.name !== undefined && m.name !== '') {
        def =
          scope.byName.get(m.name) ?? (m.datatype === undefined ? undefined : { name: m.name, datatype: m.datatype })
      } else if (m.alias !== undefined) {
        def = scope.aliases.get(aliasKey(m.alias))
      }
      if (def === undefined) {
        this.#count('unknown_alias')
        continue
      }
      const datatype = m.datatype ?? def.datatype
      const value = metricValue(m, datatype)
      if (value === undefined) continue
      const metric: SparkplugMetric = { name: def.name, dataType: DATA_TYPES[datatype] as DataTypeName, value }
      const ts = toNumber(m.timestamp)
      if (ts !== undefined) metric.timestamp = ts
      if (m.is_historical === true) metric.isHistorical = true
      if (m.is_transient === true) metric.isTransient = true
      metrics.push(metric)
    }
    const doc: SparkplugDocument = { type, metrics }
    const ts = toNumber(payload.timestamp)
    if (ts !== undefined) doc.timestamp = ts
    return doc
  }
}

function nodeKey(group: string, node: string): string {
  return `${group}/${node}`
}

function numeric(m: WireMetric, datatype: number): number | undefined {
  const v = metricValue(m, datatype)
  return typeof v === 'number' ? v : undefined
}
