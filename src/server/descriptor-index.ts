import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  create,
  createFileRegistry,
  type DescExtension,
  type DescFile,
  type DescMessage,
  type FileRegistry,
  fromBinary,
} from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";

/**
 * The descriptor sets `npm run generate` writes to gen/descriptors/ (scripts/generate-descriptors.sh):
 * gradecast's protos with their imports, the Health service and the reflection service.
 */
export const SERVED_DESCRIPTOR_SETS = [
  "gradecast.binpb",
  "grpc-health.binpb",
  "grpc-reflection.binpb",
] as const;

/**
 * The .proto files reflection describes, found by file name, symbol or extension. Each file is
 * answered with the bytes `buf build` wrote for it, never re-encoded: a client gets the original
 * paths, declared dependencies, snake_case field names and custom options.
 */
export interface DescriptorIndex {
  /** Every file, linked: dependencies resolved, types by full name. */
  readonly registry: FileRegistry;
  /** Full names of every service the files declare, sorted. */
  readonly serviceNames: readonly string[];
  /**
   * The file named `fileName` first, then every file it imports, transitively, each once
   * (a client needs all of them to build the file); undefined for an unknown file.
   */
  fileWithImports(fileName: string): Uint8Array[] | undefined;
  /**
   * The file that declares `symbol`: a service, method, message, field, oneof, enum, enum value
   * or extension, by full name without a leading dot.
   */
  fileNameOfSymbol(symbol: string): string | undefined;
  /** The file that declares extension `number` of message `extendee`. */
  fileNameOfExtension(extendee: string, number: number): string | undefined;
  /** The extension numbers of message `typeName` (ascending); undefined for an unknown message. */
  extensionNumbersOf(typeName: string): number[] | undefined;
}

/**
 * Indexes serialized FileDescriptorSets. Throws when a file imports one that no set holds,
 * or when two sets hold different files under one name.
 */
export function indexDescriptorSets(sets: readonly Uint8Array[]): DescriptorIndex {
  const bytesByFile = new Map<string, Uint8Array>();
  for (const fileBytes of sets.flatMap(splitFileDescriptorSet)) {
    const name = fromBinary(FileDescriptorProtoSchema, fileBytes).name;
    const known = bytesByFile.get(name);
    if (known && !Buffer.from(known).equals(fileBytes)) {
      throw new Error(`two different descriptors of ${name}`);
    }
    bytesByFile.set(name, fileBytes);
  }
  const registry = createFileRegistry(
    create(FileDescriptorSetSchema, {
      file: [...bytesByFile.values()].map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes)),
    }),
  );

  const fileOfSymbol = new Map<string, string>();
  const extensionsOf = new Map<string, Map<number, string>>();
  const messageNames = new Set<string>();
  const serviceNames: string[] = [];
  for (const file of registry.files) {
    const fileName = file.proto.name;
    const declare = (symbol: string) => fileOfSymbol.set(symbol, fileName);
    const declareExtension = (extension: DescExtension) => {
      declare(extension.typeName);
      const numbers = extensionsOf.get(extension.extendee.typeName) ?? new Map<number, string>();
      numbers.set(extension.number, fileName);
      extensionsOf.set(extension.extendee.typeName, numbers);
    };
    const declareEnums = (scope: string, enums: DescFile["enums"]) => {
      for (const enumDesc of enums) {
        declare(enumDesc.typeName);
        // Enum values are scoped beside their enum, as in C++: `pkg.Enum` and `pkg.VALUE`.
        for (const value of enumDesc.values) declare(scope ? `${scope}.${value.name}` : value.name);
      }
    };
    const declareMessage = (message: DescMessage) => {
      declare(message.typeName);
      messageNames.add(message.typeName);
      for (const field of message.fields) declare(`${message.typeName}.${field.name}`);
      for (const oneof of message.oneofs) declare(`${message.typeName}.${oneof.name}`);
      declareEnums(message.typeName, message.nestedEnums);
      for (const nested of message.nestedMessages) declareMessage(nested);
      for (const extension of message.nestedExtensions) declareExtension(extension);
    };
    for (const service of file.services) {
      declare(service.typeName);
      serviceNames.push(service.typeName);
      for (const method of service.methods) declare(`${service.typeName}.${method.name}`);
    }
    for (const message of file.messages) declareMessage(message);
    declareEnums(file.proto.package, file.enums);
    for (const extension of file.extensions) declareExtension(extension);
  }
  serviceNames.sort();

  return {
    registry,
    serviceNames,
    fileWithImports(fileName) {
      const file = registry.getFile(fileName);
      if (!file) return undefined;
      // Breadth first from the file itself: the asked-for file comes first.
      const seen = new Set<DescFile>([file]);
      const queue = [file];
      for (let next = queue.shift(); next; next = queue.shift()) {
        for (const dependency of next.dependencies) {
          if (seen.has(dependency)) continue;
          seen.add(dependency);
          queue.push(dependency);
        }
      }
      return [...seen].map((found) => bytesOf(bytesByFile, found.proto.name));
    },
    fileNameOfSymbol: (symbol) => fileOfSymbol.get(symbol),
    fileNameOfExtension: (extendee, number) => extensionsOf.get(extendee)?.get(number),
    extensionNumbersOf(typeName) {
      if (!messageNames.has(typeName)) return undefined;
      return [...(extensionsOf.get(typeName)?.keys() ?? [])].sort((a, b) => a - b);
    },
  };
}

/** Reads {@link SERVED_DESCRIPTOR_SETS} from `directory` (by default gradecast's gen/descriptors/). */
export async function readServedDescriptorSets(
  directory: string = servedDescriptorsDirectory(),
): Promise<Uint8Array[]> {
  return Promise.all(SERVED_DESCRIPTOR_SETS.map((name) => readFile(join(directory, name))));
}

/** The gen/descriptors/ directory that ships with gradecast; found upward from here (src/ or dist/src/). */
export function servedDescriptorsDirectory(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, "gen", "descriptors");
    if (existsSync(join(candidate, SERVED_DESCRIPTOR_SETS[0]))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error(
        `cannot find gen/descriptors/${SERVED_DESCRIPTOR_SETS[0]}: run npm run generate`,
      );
    }
    dir = parent;
  }
}

/** The serialized FileDescriptorProtos of a FileDescriptorSet (`repeated FileDescriptorProto file = 1`), as they are. */
function splitFileDescriptorSet(set: Uint8Array): Uint8Array[] {
  const reader = new BinaryReader(set);
  const files: Uint8Array[] = [];
  while (reader.pos < reader.len) {
    const [fieldNo, wireType] = reader.tag();
    if (fieldNo === 1 && wireType === WireType.LengthDelimited) files.push(reader.bytes());
    else reader.skip(wireType, fieldNo);
  }
  return files;
}

function bytesOf(bytesByFile: ReadonlyMap<string, Uint8Array>, fileName: string): Uint8Array {
  const bytes = bytesByFile.get(fileName);
  if (!bytes) throw new Error(`no bytes of indexed file ${fileName}`);
  return bytes;
}
