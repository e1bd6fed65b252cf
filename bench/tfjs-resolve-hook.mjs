// Node ESM resolve hook for tfjs 4.x: its dist/ ESM files import each other without extensions
// ("./engine", "./ops/ops"), which only bundlers accept. Retry such imports with ".js" or
// "/index.js", and send the bare "@tensorflow/tfjs-core" to its ESM entry so core, the WebGPU
// backend and the gradient registrations share one engine instance (its "main" is a CJS bundle).
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

export async function resolve(specifier, context, next) {
  const fromTfjs = context.parentURL?.includes('/node_modules/@tensorflow/');
  if (specifier === '@tensorflow/tfjs-core' && fromTfjs) {
    const main = await next('@tensorflow/tfjs-core/package.json', context);
    return { url: new URL('dist/index.js', main.url).href, shortCircuit: true };
  }
  if (fromTfjs && !/\.(m?js|json)$/.test(specifier)) {
    const isRelative = specifier.startsWith('./') || specifier.startsWith('../');
    if (isRelative) {
      const base = fileURLToPath(new URL(specifier, context.parentURL));
      for (const cand of [`${base}.js`, `${base}/index.js`]) {
        if (existsSync(cand) && statSync(cand).isFile()) return { url: pathToFileURL(cand).href, shortCircuit: true };
      }
    } else if (specifier.startsWith('@tensorflow/') && specifier.split('/').length > 2) {
      try {
        return await next(`${specifier}.js`, context);
      } catch {
        // fall through to the default
      }
    }
  }
  return next(specifier, context);
}
