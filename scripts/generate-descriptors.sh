#!/usr/bin/env bash
# The second half of `npm run generate` (after `buf generate`): writes the
# descriptors gradecast's server reflection serves, as FileDescriptorSets under
# gen/descriptors/, exactly as `buf build` compiles them (original file names,
# declared dependencies, snake_case fields, custom options). Offline and
# reproducible: the inputs are proto/ and the .proto files that ship in
# node_modules at the versions package-lock.json pins.
#   gradecast.binpb        proto/ with every import (google/protobuf/*, google/rpc/*)
#   grpc-health.binpb      grpc.health.v1, as grpc-health-check (the server's Health) ships it
#   grpc-reflection.binpb  grpc.reflection.v1, as @grpc/reflection ships it
# Source info (comments, spans) is left out, like the descriptors compiled into
# protoc-generated servers: a reflection client needs the types, not the layout.
set -euo pipefail
cd "$(dirname "$0")/.."

buf=node_modules/.bin/buf
out=gen/descriptors
flags=(--as-file-descriptor-set --exclude-source-info)

mkdir -p "$out"
"$buf" build "${flags[@]}" -o "$out/gradecast.binpb"
"$buf" build node_modules/grpc-health-check/proto "${flags[@]}" -o "$out/grpc-health.binpb"
reflection_root=node_modules/@grpc/reflection/build/proto
# Only the v1 file: the package's proto/ also holds samples that do not compile.
"$buf" build "$reflection_root" --path "$reflection_root/grpc/reflection/v1/reflection.proto" \
  "${flags[@]}" -o "$out/grpc-reflection.binpb"
