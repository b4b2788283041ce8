#!/usr/bin/env python3
"""Regenerates src/api/schema/builtin.schema from a kubectl binary.

The Kubernetes types' field facts (JSON names, protobuf field numbers, patch strategies and merge
keys) are read from the Go type metadata that every Go binary carries for reflection, so the
schema matches the API version of that kubectl exactly. Usage:

    tools/gen_schema.py /usr/lib/google-cloud-sdk/bin/kubectl.1.32 > src/api/schema/builtin.schema

Only the types reachable from ROOTS are written. The format is described at the top of the output.
"""
import re
import struct
import sys

ROOTS = [
    "k8s.io/api/core/v1." + k for k in [
        "Namespace", "Pod", "Service", "Endpoints", "ConfigMap", "Secret", "ServiceAccount",
        "Event", "Node", "Binding", "PersistentVolumeClaim", "PodTemplate"]
] + ["k8s.io/api/apps/v1." + k for k in ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet",
                                        "ControllerRevision"]] + [
    "k8s.io/api/batch/v1.Job", "k8s.io/api/batch/v1.CronJob",
    "k8s.io/api/discovery/v1.EndpointSlice",
    "k8s.io/api/networking/v1.Ingress", "k8s.io/api/networking/v1.IngressClass",
    "k8s.io/api/networking/v1.NetworkPolicy",
    "k8s.io/api/coordination/v1.Lease",
    "k8s.io/api/autoscaling/v2.HorizontalPodAutoscaler",
    "k8s.io/api/autoscaling/v1.Scale",
    "k8s.io/api/policy/v1.PodDisruptionBudget", "k8s.io/api/policy/v1.Eviction",
] + ["k8s.io/api/rbac/v1." + k for k in ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"]] + [
    "k8s.io/apimachinery/pkg/apis/meta/v1." + k for k in [
        "Status", "DeleteOptions", "ListMeta", "PartialObjectMetadata"]]

# Go types with their own JSON/protobuf encodings: mapped to schema scalars.
SPECIAL = {
    "k8s.io/apimachinery/pkg/api/resource.Quantity": "quantity",
    "k8s.io/apimachinery/pkg/util/intstr.IntOrString": "intorstring",
    "k8s.io/apimachinery/pkg/apis/meta/v1.Time": "time",
    "k8s.io/apimachinery/pkg/apis/meta/v1.MicroTime": "microtime",
    "k8s.io/apimachinery/pkg/apis/meta/v1.Duration": "duration",
    "k8s.io/apimachinery/pkg/runtime.RawExtension": "raw",
    "k8s.io/apimachinery/pkg/apis/meta/v1.FieldsV1": "fieldsv1",
}
SCALARS = {"string": "string", "int32": "int32", "int64": "int64", "bool": "bool",
           "float64": "float64", "int": "int64", "uint8": "uint8", "float32": "float64",
           "uint32": "int64", "uint64": "int64", "int16": "int32"}

# ----------------------------------------------------------------------------- ELF / Go types
KIND = {1: 'bool', 2: 'int', 3: 'int8', 4: 'int16', 5: 'int32', 6: 'int64', 7: 'uint', 8: 'uint8',
        9: 'uint16', 10: 'uint32', 11: 'uint64', 13: 'float32', 14: 'float64', 17: 'array',
        20: 'interface', 21: 'map', 22: 'ptr', 23: 'slice', 24: 'string', 25: 'struct'}


class GoBinary:
    def __init__(self, path):
        self.data = open(path, 'rb').read()
        d = self.data
        shoff = struct.unpack_from('<Q', d, 0x28)[0]
        shentsize, shnum, shstrndx = struct.unpack_from('<HHH', d, 0x3a)
        secs = []
        for i in range(shnum):
            name, _typ, _flags, addr, off, size = struct.unpack_from('<IIQQQQ', d, shoff + i * shentsize)
            secs.append((name, addr, off, size))
        stroff = secs[shstrndx][2]
        self.sections = {}
        for name, addr, off, size in secs:
            n = d[stroff + name:d.index(b'\0', stroff + name)].decode()
            self.sections[n] = (addr, off, size)
        self.base = self.sections['.rodata'][0]
        self.seen = {}
        self.structs = {}

    def off(self, addr):
        for addr0, off, size in self.sections.values():
            if addr0 and addr0 <= addr < addr0 + size:
                return off + addr - addr0
        raise ValueError(hex(addr))

    def u64(self, addr):
        return struct.unpack_from('<Q', self.data, self.off(addr))[0]

    def varint(self, o):
        r = s = 0
        while True:
            b = self.data[o]
            o += 1
            r |= (b & 0x7f) << s
            s += 7
            if b < 0x80:
                return r, o

    def name(self, addr):
        o = self.off(addr)
        flags = self.data[o]
        n, o2 = self.varint(o + 1)
        nm = self.data[o2:o2 + n].decode('utf8', 'replace')
        tag = ''
        if flags & 2:
            tn, o3 = self.varint(o2 + n)
            tag = self.data[o3:o3 + tn].decode('utf8', 'replace')
        return nm, tag, flags

    def typename(self, addr):
        o = self.off(addr)
        tflag = self.data[o + 20]
        nm = self.name(self.base + struct.unpack_from('<i', self.data, o + 40)[0])[0]
        return nm[1:] if tflag & 2 else nm

    def pkgpath(self, addr, kind):
        o = self.off(addr)
        if not self.data[o + 20] & 1:
            return ''
        extra = {25: 80, 22: 56, 23: 56, 21: 88, 17: 72}.get(kind, 48)
        return self.name(self.base + struct.unpack_from('<i', self.data, o + extra)[0])[0]

    def describe(self, addr):
        if addr in self.seen:
            return self.seen[addr]
        o = self.off(addr)
        kind = self.data[o + 23] & 0x1f
        k = KIND.get(kind, str(kind))
        named = bool(self.data[o + 20] & 4)
        short = self.typename(addr).split('.')[-1]
        if k == 'ptr':
            r = '*' + self.describe(self.u64(addr + 48))
        elif k == 'slice':
            r = '[]' + self.describe(self.u64(addr + 48))
        elif k == 'map':
            r = 'map[' + self.describe(self.u64(addr + 48)) + ']' + self.describe(self.u64(addr + 56))
        elif k == 'struct':
            r = (self.pkgpath(addr, kind) + '.' + short) if named else 'struct'
            self.seen[addr] = r
            fields = []
            fptr, flen = self.u64(addr + 56), self.u64(addr + 64)
            for i in range(flen):
                fa = fptr + i * 24
                fname, tag, flags = self.name(self.u64(fa))
                fields.append((fname, self.describe(self.u64(fa + 8)), tag, bool(flags & 8)))
            if named:
                self.structs[r] = fields
        elif named:
            r = k + ':' + self.pkgpath(addr, kind) + '.' + short
        else:
            r = k
        self.seen[addr] = r
        return r

    def load(self):
        _addr, off, size = self.sections['.typelink']
        for rel in struct.unpack_from('<%di' % (size // 4), self.data, off):
            try:
                self.describe(self.base + rel)
            except (ValueError, IndexError, struct.error):
                pass
        return self.structs

# ----------------------------------------------------------------------------- schema output


def alias(go):
    pkg, name = go.rsplit('.', 1)
    if pkg.startswith('k8s.io/api/'):
        return pkg[len('k8s.io/api/'):].replace('/', '.') + '.' + name
    if pkg == 'k8s.io/apimachinery/pkg/apis/meta/v1':
        return 'meta.v1.' + name
    raise ValueError('unexpected package ' + go)


def tags(tag):
    return dict(re.findall(r'(\w+):"([^"]*)"', tag))


def schema_type(go, pending):
    """Returns the schema spelling of a Go type description and queues referenced structs."""
    if go.startswith('*'):
        return schema_type(go[1:], pending)
    if go.startswith('[]'):
        if go in ('[]uint8', '[]uint8:.uint8'):
            return 'bytes'
        return 'list<' + schema_type(go[2:], pending) + '>'
    if go.startswith('map['):
        depth, i = 0, 4
        while True:
            c = go[i]
            if c == '[':
                depth += 1
            elif c == ']':
                if depth == 0:
                    break
                depth -= 1
            i += 1
        return 'map<' + schema_type(go[i + 1:], pending) + '>'
    if ':' in go:  # named or builtin scalar, e.g. "string:k8s.io/api/core/v1.RestartPolicy"
        return SCALARS[go.split(':')[0]]
    if go in SCALARS:
        return SCALARS[go]
    if go in SPECIAL:
        return SPECIAL[go]
    if go == 'interface':
        return 'raw'
    pending.append(go)
    return alias(go)


def main():
    structs = GoBinary(sys.argv[1]).load()
    out = [HEADER]
    pending = list(ROOTS)
    done = set()
    while pending:
        go = pending.pop(0)
        if go in done or go in SPECIAL:
            continue
        done.add(go)
        if go not in structs:
            sys.exit('type not found in binary: ' + go)
        out.append('type ' + alias(go))
        for fname, ftype, tag, embedded in structs[go]:
            t = tags(tag)
            js = t.get('json', '')
            jname, _, jopts = js.partition(',')
            proto = t.get('protobuf', '')
            pnum = proto.split(',')[1] if proto else ''
            if jname == '-' or (not js and not embedded):
                continue
            if embedded and jname == '':
                if ftype.endswith('meta/v1.TypeMeta'):
                    continue
                line = ' - ' + ('p' + pnum if pnum else '-') + ' ' + schema_type(ftype, pending) + ' inline'
                out.append(line)
                continue
            flags = []
            if ftype.startswith('*'):
                flags.append('ptr')
            if 'omitempty' not in jopts:
                flags.append('always')
            strategy = t.get('patchStrategy', '')
            key = t.get('patchMergeKey', '')
            for s in strategy.split(','):
                if s == 'merge':
                    flags.append('merge=' + key if key else 'mergeset')
                elif s == 'retainKeys':
                    flags.append('retainKeys')
                elif s == 'replace':
                    flags.append('replace')
            out.append(' %s %s %s%s' % (jname, 'p' + pnum if pnum else '-', schema_type(ftype, pending),
                                         (' ' + ' '.join(flags)) if flags else ''))
    sys.stdout.write('\n'.join(out) + '\n')


HEADER = """# Kubernetes built-in types, generated by tools/gen_schema.py from kubectl's Go type metadata.
# Do not edit by hand: regenerate.
#
# type <group>.<version>.<Name>       starts a type; its fields follow, one per line:
#  <json> <pN|-> <type> [flags]        pN = protobuf field number, - = not on the protobuf wire
#  - <pN|-> <Type> inline              an embedded struct whose JSON fields are flattened into this one
# <type>: string int32 int64 bool float64 bytes quantity intorstring time microtime duration raw
#         fieldsv1, a type name, list<type> or map<type> (keys are strings)
# flags: ptr (optional pointer), always (no omitempty), merge=<key> (strategic merge by key),
#        mergeset (merged primitive list), retainKeys, replace"""

if __name__ == '__main__':
    main()
