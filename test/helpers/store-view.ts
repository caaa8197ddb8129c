import type { Store } from "../../src/store/index.js";

/**
 * `store` with some of its methods replaced: a store that fails, waits or answers in another
 * order where a test needs it, and is the real store everywhere else. The replacements call
 * the real store themselves when they want its answer.
 */
export function storeWith(store: Store, replaced: Partial<Store>): Store {
  return new Proxy(store, {
    get(target, property) {
      const replacement: unknown = Reflect.get(replaced, property);
      if (typeof replacement === "function") return replacement;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
