/** google.protobuf.Value as protobufjs decodes it (camelCase names, defaults left out) back to the JSON it stands for. */
export function fromValue(v: Record<string, unknown>): unknown {
  if ('nullValue' in v) return null
  if ('numberValue' in v) return v.numberValue
  if ('stringValue' in v) return v.stringValue
  if ('boolValue' in v) return v.boolValue
  if ('listValue' in v) return ((v.listValue as { values?: Record<string, unknown>[] }).values ?? []).map(fromValue)
  const fields = (v.structValue as { fields?: Record<string, Record<string, unknown>> }).fields ?? {}
  return Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, fromValue(f)]))
}
