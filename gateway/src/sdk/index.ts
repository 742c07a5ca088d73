/**
 * The Veil SDK: everything an operator (filters/operators/) or a device profile (filters/profiles/) may import from
 * the gateway, by the name `#veil/sdk`, and nothing else of it. It is a leaf: it imports node builtins and npm
 * packages only, never the core, so the core can change behind it without touching a plug-in.
 *
 * Stability: a name exported here keeps its meaning within a major version; additions are allowed, removals and
 * incompatible changes of a signature are breaking changes and named in the changelog. Anything not exported here
 * is the core's and may change at any time.
 */
export {
  CATEGORIES,
  CATEGORY_LABELS,
  DOMAINS,
  DROP_REASONS,
  FILTERED_ROOT,
  STAGES,
  UNCLASSIFIED,
  isCategory,
  isDomain,
  type Category,
  type CategoryLabel,
  type Domain,
  type DropReason,
  type StageName,
} from './model.ts'
export {
  SUPPRESS,
  defineOperator,
  isScheduled,
  scheduled,
  type CompileEnv,
  type Emission,
  type OperatorContext,
  type OperatorDefinition,
  type OperatorFn,
  type ScheduledOperatorFn,
  type Suppress,
} from './operator.ts'
export {
  defineProfile,
  type Decoding,
  type JsonSchema,
  type ProfileAccess,
  type ProfileDefinition,
  type StreamDefinition,
} from './profile.ts'
export { FORBIDDEN_KEYS, compileAccessor, compileGetter, isPlainObject, type Accessor, type Getter } from './path.ts'
export { DeviceState, forgetDevices } from './state.ts'
export { base32, type Keyring, type PseudonymScope } from './keyring.ts'
export { TIME_UNITS, type TimeUnit } from './time.ts'
export { baseTopicProblem, patternCovers, patternProblem, type PatternRules } from './topics.ts'
export { TEXT_DROP_DEFAULT_KEYS } from './text.ts'
export {
  JSON_CONTENT_TYPE,
  decodingName,
  defineCodec,
  type CodecCopy,
  type CodecEncodeRequest,
  type CodecHelpers,
  type CodecMessage,
  type CodecStateContext,
  type StreamCodec,
} from './codec.ts'
export {
  defineConfigSection,
  defineProfileSettings,
  type ConfigSectionDeclaration,
  type ProfileSettingsDeclaration,
} from './settings.ts'
export {
  NOTHING,
  definePolicyExtension,
  type Nothing,
  type PolicyExtension,
  type PolicyExtensionContext,
  type Projection,
} from './policy.ts'
export { MAX_NESTING } from './nesting.ts'
export { MAX_PROTO_DEPTH, checkWire, prepareWireCheck, text as utf8Text, type WireProblem } from './protobuf.ts'
