/** The seeded generator the tests share with the drill (src/util/rng.ts). */
export { xorshift } from '../../src/util/rng';
