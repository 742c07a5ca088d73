#!/usr/bin/env node
// Veil ships TypeScript sources and runs them through tsx's loader, so `npx veil` works right after `npm ci`
// without a build step; the loader compiles each module once at start-up, never per message.
import { register } from 'tsx/esm/api'

register()
const { main } = await import('../gateway/src/cli/main.ts')
const code = await main(process.argv.slice(2))
// Every command has finished its work and closed what it opened; exiting explicitly guarantees that a stray
// handle in a dependency can never keep a finished command (or a failed start) hanging.
process.exit(code)
