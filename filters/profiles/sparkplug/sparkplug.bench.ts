import { sparkplugBenchmarks } from './sparkplug.benchmarks.ts'

sparkplugBenchmarks()
