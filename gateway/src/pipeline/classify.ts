import type { DropReason } from '../model.ts'
import type { Classifier } from '../profiles/classifier.ts'
import type { Stage } from './stage.ts'

/**
 * The topic limits, checked before the topic is split or matched: a 64 KiB topic of slashes would otherwise
 * become 32 768 strings. A string has at most as many UTF-16 units as UTF-8 bytes and each unit is at most 3
 * bytes, so the exact byte count is needed only in between.
 */
export function topicOverLimit(topic: string, limits: { topicBytes: number; topicLevels: number }): DropReason | undefined {
  if (topic.length > limits.topicBytes) return 'topic_too_long'
  if (topic.length * 3 > limits.topicBytes && Buffer.byteLength(topic, 'utf8') > limits.topicBytes) return 'topic_too_long'
  let levels = 1
  for (let i = topic.indexOf('/'); i !== -1; i = topic.indexOf('/', i + 1)) {
    if (++levels > limits.topicLevels) return 'too_many_topic_levels'
  }
  return undefined
}

/** Topic to profile stream and device id. A topic no profile knows is dropped: Veil never guesses. */
export function classifyStage(classifier: Classifier, limits: { payloadBytes: number; topicBytes: number; topicLevels: number }): Stage {
  return {
    name: 'classify',
    run(env) {
      const overLimit = topicOverLimit(env.topic, limits)
      if (overLimit !== undefined) return overLimit
      const match = classifier.classify(env.topic)
      if (match === undefined) return 'unknown_topic'
      env.stream = match.stream
      env.category = match.stream.category
      env.deviceId = match.deviceId
      if (env.payload.length > limits.payloadBytes) return 'payload_too_large'
      return undefined
    },
  }
}
