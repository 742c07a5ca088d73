// The import graph by area: app (gateway/src/cli, the composition root) -> core (gateway/src) -> sdk (gateway/src/sdk),
// app -> plug-ins (filters/, simulators/) -> sdk. Test and bench files are the harness and may import anything.
const HARNESS = '(\\.test\\.ts|\\.bench\\.ts|(^|/)testing\\.ts|\\.testing\\.ts)$'
const APP = '^gateway/src/(cli/|builtins\\.ts$)'

module.exports = {
  forbidden: [
    {
      name: 'sdk-is-a-leaf',
      comment:
        'gateway/src/sdk is what plug-ins build on: it imports node builtins and npm packages only, never the core.',
      severity: 'error',
      from: { path: '^gateway/src/sdk/', pathNot: HARNESS },
      to: { path: '^(gateway|filters|simulators)/', pathNot: '^gateway/src/sdk/' },
    },
    {
      name: 'plugins-import-only-the-sdk',
      comment:
        'A plug-in (filters/, simulators/) imports the gateway as #veil/sdk only; anything else of the core may change behind it.',
      severity: 'error',
      from: { path: '^(filters|simulators)/', pathNot: HARNESS },
      to: { path: '^gateway/', pathNot: '^gateway/src/sdk/' },
    },
    {
      name: 'core-does-not-import-plugins',
      comment:
        'The core gets the operator and profile registries passed in by the composition root (gateway/src/cli, gateway/src/builtins.ts).',
      severity: 'error',
      from: { path: '^gateway/src/', pathNot: [APP, HARNESS, '\\.benchmarks\\.ts$'] },
      to: { path: '^(filters|simulators)/' },
    },
    {
      name: 'no-circular',
      comment: 'A cycle ties the areas into one loop: split the shared part out (into the SDK if plug-ins need it).',
      severity: 'error',
      // Type-only imports vanish at runtime; a cycle of them is a naming question, not a loop between areas.
      from: { pathNot: HARNESS },
      to: { circular: true, viaOnly: { pathNot: HARNESS, dependencyTypesNot: ['type-only'] } },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^node_modules/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.json'],
    },
  },
}
