import { topicLevels, type Classifier } from '../streams/classifier.ts'
import type { Stage } from './stage.ts'

/**
 * The byte limit of a topic, checked first: it also bounds the level count that follows. A string has at most as
 * many UTF-16 units as UTF-8 bytes and each unit is at most 3 bytes, so the exact byte count is needed only in
 * between.
 */
function topicTooLong(topic: string, topicBytes: number): boolean {
  if (topic.length > topicBytes) return true
  return topic.length * 3 > topicBytes && Buffer.byteLength(topic, 'utf8') > topicBytes
}

/** Topic to profile stream and device id. A topic no profile knows is dropped: Veil never guesses. */
export function classifyStage(
  classifier: Classifier,
  limits: { payloadBytes: number; topicBytes: number; topicLevels: number },
): Stage {
  return {
    name: 'classify',
    run(env) {
      if (topicTooLong(env.topic, limits.topicBytes)) return 'topic_too_long'
      // Counted once, for the limit and for the classifier's matching.
      const levels = topicLevels(env.topic)
      if (levels > limits.topicLevels) return 'too_many_topic_levels'
      const match = classifier.classify(env.topic, levels)
      if (match === undefined) return 'unknown_topic'
      env.stream = match.stream
      env.category = match.stream.category
      env.deviceId = match.deviceId
      if (env.payload.length > limits.payloadBytes) return 'payload_too_large'
      return undefined
    },
  }
}
