import type { Classifier } from '../profiles/classifier.ts'
import type { Stage } from './stage.ts'

/** Topic to profile stream and device id. A topic no profile knows is dropped: Veil never guesses. */
export function classifyStage(classifier: Classifier, limits: { payloadBytes: number }): Stage {
  return {
    name: 'classify',
    run(env) {
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
