import { protobufBenchmarks } from './protobuf.benchmarks.ts'

protobufBenchmarks()
