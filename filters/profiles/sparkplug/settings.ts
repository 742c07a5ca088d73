/**
 * The top-level `sparkplug:` configuration section: the category of each group's traffic and the bounds of the edge
 * node state (schemas/gateway.config.schema.json `sparkplug`).
 */
import { defineConfigSection, type Category } from '#veil/sdk'
import { DEFAULT_SPARKPLUG_CATEGORY, sparkplugProfiles, type SparkplugProfileOptions } from './index.ts'
import { DEFAULT_SPARKPLUG_LIMITS, type SparkplugLimits } from './state.ts'

/** Sparkplug B: which category its groups belong to, and the bounds of the edge node state. */
export type SparkplugConfig = SparkplugProfileOptions & SparkplugLimits

/** The section as the configuration file gives it (schema-valid). */
type SparkplugSection = Partial<SparkplugLimits> & { category?: Category; groups?: Record<string, Category> }

export const sparkplugSettings = defineConfigSection<SparkplugConfig>({
  key: 'sparkplug',
  resolve: (section) => ({
    category: DEFAULT_SPARKPLUG_CATEGORY,
    ...DEFAULT_SPARKPLUG_LIMITS,
    ...(section as SparkplugSection | undefined),
  }),
  profiles: (profiles, settings) => [...profiles.filter((p) => p.name !== 'sparkplug'), ...sparkplugProfiles(settings)],
})
