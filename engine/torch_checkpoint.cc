#include "engine/torch_checkpoint.h"

#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <unordered_map>

#include "engine/safetensors_writer.h"
#include "engine/zip_reader.h"
#include "storage/file_system.h"

namespace modelsync::engine {
namespace {

constexpr uint64_t kMaxPickle = 256u << 20;
constexpr uint64_t kMaxStack = 1u << 22;
constexpr uint64_t kMaxMemo = 1u << 22;
constexpr uint64_t kMaxTorchDims = 16;
constexpr int kMaxDepth = 16;

// --- the restricted unpickler ------------------------------------------------------------

// Objects live in the unpickler's arena (a pickle can build cycles: no reference counting).
struct Obj;
using Ref = Obj*;
struct Obj {
  enum Kind { kNone, kBool, kInt, kFloat, kStr, kBytes, kTuple, kList, kDict, kGlobal, kStorage, kTensor } kind = kNone;
  int64_t i = 0;
  std::string s;            // str, bytes, global "module.name", storage dtype
  std::vector<Ref> items;   // tuple, list; dict: key, value, key, value...
  std::string key;          // storage key
  uint64_t numel = 0;       // storage elements
  Ref storage;              // tensor
  uint64_t offset = 0;      // tensor storage offset
  std::vector<uint64_t> shape, stride;
};

struct StorageType {
  const char* global;
  const char* dtype;
};
constexpr StorageType kStorages[] = {
    {"torch.FloatStorage", "F32"},  {"torch.HalfStorage", "F16"},  {"torch.BFloat16Storage", "BF16"},
    {"torch.DoubleStorage", "F64"}, {"torch.LongStorage", "I64"},  {"torch.IntStorage", "I32"},
    {"torch.ShortStorage", "I16"},  {"torch.CharStorage", "I8"},   {"torch.ByteStorage", "U8"},
    {"torch.BoolStorage", "BOOL"},
};
constexpr StorageType kDtypes[] = {
    {"torch.float32", "F32"}, {"torch.float16", "F16"}, {"torch.bfloat16", "BF16"},
    {"torch.float64", "F64"}, {"torch.int64", "I64"},   {"torch.int32", "I32"},
    {"torch.int16", "I16"},   {"torch.int8", "I8"},     {"torch.uint8", "U8"},
    {"torch.bool", "BOOL"},
};
const char* const kCallables[] = {
    "collections.OrderedDict",           "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3",   "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state", "torch._tensor._rebuild_from_type_v2",
};
const char* const kTypes[] = {"torch.Tensor", "torch.nn.parameter.Parameter"};

const char* DtypeOfStorage(const std::string& g) {
  for (const auto& s : kStorages)
    if (g == s.global) return s.dtype;
  return nullptr;
}
const char* DtypeOfDtype(const std::string& g) {
  for (const auto& s : kDtypes)
    if (g == s.global) return s.dtype;
  return nullptr;
}
bool Allowed(const std::string& g) {
  if (DtypeOfStorage(g) || DtypeOfDtype(g)) return true;
  for (const char* c : kCallables)
    if (g == c) return true;
  for (const char* c : kTypes)
    if (g == c) return true;
  return false;
}

class Unpickler {
 public:
  Unpickler(const std::string& data, std::string what) : d_(data), what_(std::move(what)) {}

  Ref Make(Obj::Kind k) {
    arena_.push_back(std::make_unique<Obj>());
    arena_.back()->kind = k;
    return arena_.back().get();
  }

  Result<Ref> Run() {
    for (;;) {
      if (p_ >= d_.size()) return Bad("ends without a STOP opcode");
      const size_t at = p_;
      const unsigned char op = static_cast<unsigned char>(d_[p_++]);
      if (arena_.size() >= kMaxStack) return BadAt(at, "builds more than 2^22 objects");
      Status st = Step(op, at);
      if (stopped_) {
        if (stack_.size() != 1) return Bad("stops with " + std::to_string(stack_.size()) + " values on its stack");
        return stack_.back();
      }
      MS_RETURN_IF_ERROR(st);
    }
  }

 private:
  Status Bad(const std::string& why) const {
    return Status::InvalidArgument(what_ + ": " + why);
  }
  Status BadAt(size_t at, const std::string& why) const {
    return Bad(why + " (pickle offset " + std::to_string(at) + ")");
  }
  Result<uint64_t> U(int n) {
    if (p_ + n > d_.size()) return Bad("ends inside an opcode's argument");
    uint64_t v = LittleEndian(d_, p_, n);
    p_ += n;
    return v;
  }
  Result<std::string> Bytes(uint64_t n) {
    if (p_ + n > d_.size() || p_ + n < p_) return Bad("ends inside a string");
    std::string s = d_.substr(p_, n);
    p_ += n;
    return s;
  }
  Result<std::string> Line() {
    size_t nl = d_.find('\n', p_);
    if (nl == std::string::npos || nl - p_ > 256) return Bad("has an unterminated GLOBAL name");
    std::string s = d_.substr(p_, nl - p_);
    p_ = nl + 1;
    return s;
  }
  Status Push(Ref r) {
    if (stack_.size() >= kMaxStack) return Bad("has a stack deeper than 2^22");
    stack_.push_back(std::move(r));
    return Status::Ok();
  }
  Result<Ref> Pop(size_t at) {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back()))
      return BadAt(at, "pops an empty stack");
    Ref r = std::move(stack_.back());
    stack_.pop_back();
    return r;
  }
  Result<std::vector<Ref>> PopMark(size_t at) {
    if (marks_.empty()) return BadAt(at, "has no MARK to pop to");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Ref> v(std::make_move_iterator(stack_.begin() + m), std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return v;
  }
  Status Memo(uint64_t k, size_t at) {
    if (stack_.empty()) return BadAt(at, "memoizes an empty stack");
    if (k >= kMaxMemo) return BadAt(at, "uses memo index " + std::to_string(k));
    memo_[k] = stack_.back();
    return Status::Ok();
  }
  Status Get(uint64_t k, size_t at) {
    auto it = memo_.find(k);
    if (it == memo_.end()) return BadAt(at, "reads memo " + std::to_string(k) + ", never stored");
    return Push(it->second);
  }
  Status Global(const std::string& module, const std::string& name, size_t at) {
    const std::string g = module + "." + name;
    if (!Allowed(g))
      return BadAt(at, "names the global '" + g +
                           "', which torch.save of a state dict never writes: refused (nothing "
                           "of the file was run)");
    Ref r = Make(Obj::kGlobal);
    r->s = g;
    return Push(r);
  }
  Result<Ref> Tuple(std::vector<Ref> v) {
    Ref t = Make(Obj::kTuple);
    t->items = std::move(v);
    return t;
  }

  static Result<int64_t> Int(const Ref& r) {
    if (r->kind == Obj::kInt || r->kind == Obj::kBool) return r->i;
    return Status::InvalidArgument("not an int");
  }
  Result<std::vector<uint64_t>> Dims(const Ref& r, const char* what, size_t at) {
    if (r->kind != Obj::kTuple && r->kind != Obj::kList) return BadAt(at, std::string(what) + " is not a tuple");
    if (r->items.size() > kMaxTorchDims) return BadAt(at, std::string(what) + " has more than 16 dimensions");
    std::vector<uint64_t> v;
    for (const auto& x : r->items) {
      auto i = Int(x);
      if (!i.ok() || *i < 0) return BadAt(at, std::string(what) + " holds a value that is not a size");
      v.push_back(static_cast<uint64_t>(*i));
    }
    return v;
  }

  // func(*args) for the callables torch.save writes.
  Result<Ref> Call(const Ref& f, const Ref& args, size_t at, int depth = 0) {
    if (f->kind != Obj::kGlobal) return BadAt(at, "calls something that is not a global");
    if (args->kind != Obj::kTuple) return BadAt(at, "calls " + f->s + " without an argument tuple");
    const auto& a = args->items;
    const std::string& g = f->s;
    if (g == "collections.OrderedDict") {
      if (!a.empty()) return BadAt(at, "builds an OrderedDict from arguments");
      return Make(Obj::kDict);
    }
    if (g == "torch._utils._rebuild_tensor_v2" || g == "torch._utils._rebuild_tensor_v3") {
      if (a.size() < 4) return BadAt(at, g + " has " + std::to_string(a.size()) + " arguments");
      if (a[0]->kind != Obj::kStorage) return BadAt(at, g + "'s first argument is not a storage");
      Ref t = Make(Obj::kTensor);
      t->storage = a[0];
      auto off = Int(a[1]);
      if (!off.ok() || *off < 0) return BadAt(at, g + "'s storage offset is not a size");
      t->offset = static_cast<uint64_t>(*off);
      MS_ASSIGN_OR_RETURN(t->shape, Dims(a[2], "a tensor's size", at));
      MS_ASSIGN_OR_RETURN(t->stride, Dims(a[3], "a tensor's stride", at));
      if (t->shape.size() != t->stride.size()) return BadAt(at, "a tensor's size and stride differ in length");
      if (g == "torch._utils._rebuild_tensor_v3") {
        if (a.size() < 7 || a[6]->kind != Obj::kGlobal || !DtypeOfDtype(a[6]->s))
          return BadAt(at, g + " has no dtype this converter knows");
        t->s = DtypeOfDtype(a[6]->s);
      }
      return t;
    }
    if (g == "torch._utils._rebuild_parameter" || g == "torch._utils._rebuild_parameter_with_state") {
      if (a.empty() || a[0]->kind != Obj::kTensor) return BadAt(at, g + "'s first argument is not a tensor");
      return a[0];
    }
    if (g == "torch._tensor._rebuild_from_type_v2") {
      // (func, type, args, state): func(*args) as a plain tensor; the Python state is dropped.
      if (a.size() < 3 || depth > 2) return BadAt(at, g + " has the wrong arguments");
      return Call(a[0], a[2], at, depth + 1);
    }
    return BadAt(at, "calls " + g + ", which is not a function");
  }

  Status Step(unsigned char op, size_t at) {
    switch (op) {
      case 0x80: {  // PROTO
        MS_ASSIGN_OR_RETURN(uint64_t v, U(1));
        if (v > 5) return BadAt(at, "uses pickle protocol " + std::to_string(v));
        return Status::Ok();
      }
      case 0x95: return U(8).status();  // FRAME: a hint only
      case '.': stopped_ = true; return Status::Ok();
      case '(':
        if (marks_.size() >= kMaxStack) return BadAt(at, "has too many MARKs");
        marks_.push_back(stack_.size());
        return Status::Ok();
      case '}': return Push(Make(Obj::kDict));
      case ']': return Push(Make(Obj::kList));
      case ')': return Push(Make(Obj::kTuple));
      case 'N': return Push(Make(Obj::kNone));
      case 0x88: case 0x89: {  // NEWTRUE, NEWFALSE
        Ref r = Make(Obj::kBool);
        r->i = op == 0x88;
        return Push(r);
      }
      case 'J': case 'K': case 'M': {  // BININT, BININT1, BININT2
        MS_ASSIGN_OR_RETURN(uint64_t v, U(op == 'J' ? 4 : op == 'K' ? 1 : 2));
        Ref r = Make(Obj::kInt);
        r->i = op == 'J' ? static_cast<int32_t>(static_cast<uint32_t>(v)) : static_cast<int64_t>(v);
        return Push(r);
      }
      case 0x8a: {  // LONG1
        MS_ASSIGN_OR_RETURN(uint64_t n, U(1));
        if (n > 8) return BadAt(at, "has an integer of " + std::to_string(n) + " bytes");
        MS_ASSIGN_OR_RETURN(std::string b, Bytes(n));
        uint64_t v = n ? LittleEndian(b, 0, static_cast<int>(n)) : 0;
        if (n > 0 && n < 8 && (static_cast<unsigned char>(b[n - 1]) & 0x80)) v |= ~0ull << (8 * n);
        Ref r = Make(Obj::kInt);
        r->i = static_cast<int64_t>(v);
        return Push(r);
      }
      case 'G': {  // BINFLOAT (big-endian double)
        MS_ASSIGN_OR_RETURN(std::string b, Bytes(8));
        uint64_t bits = 0;
        for (char c : b) bits = (bits << 8) | static_cast<unsigned char>(c);
        Ref r = Make(Obj::kFloat);
        r->i = static_cast<int64_t>(bits);
        return Push(r);
      }
      case 'X': case 0x8c: case 0x8d: case 'B': case 'C': case 0x8e: {
        // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8, BINBYTES, SHORT_BINBYTES, BINBYTES8
        const int n = op == 0x8c || op == 'C' ? 1 : op == 'X' || op == 'B' ? 4 : 8;
        MS_ASSIGN_OR_RETURN(uint64_t len, U(n));
        MS_ASSIGN_OR_RETURN(std::string s, Bytes(len));
        Ref r = Make(op == 'B' || op == 'C' || op == 0x8e ? Obj::kBytes : Obj::kStr);
        r->s = std::move(s);
        return Push(r);
      }
      case 'q': case 'r': {  // BINPUT, LONG_BINPUT
        MS_ASSIGN_OR_RETURN(uint64_t k, U(op == 'q' ? 1 : 4));
        return Memo(k, at);
      }
      case 0x94: return Memo(memo_.size(), at);  // MEMOIZE
      case 'h': case 'j': {  // BINGET, LONG_BINGET
        MS_ASSIGN_OR_RETURN(uint64_t k, U(op == 'h' ? 1 : 4));
        return Get(k, at);
      }
      case 'c': {  // GLOBAL "module\nname\n"
        MS_ASSIGN_OR_RETURN(std::string m, Line());
        MS_ASSIGN_OR_RETURN(std::string n, Line());
        return Global(m, n, at);
      }
      case 0x93: {  // STACK_GLOBAL
        MS_ASSIGN_OR_RETURN(Ref n, Pop(at));
        MS_ASSIGN_OR_RETURN(Ref m, Pop(at));
        if (m->kind != Obj::kStr || n->kind != Obj::kStr) return BadAt(at, "STACK_GLOBAL without two strings");
        return Global(m->s, n->s, at);
      }
      case 't': {
        MS_ASSIGN_OR_RETURN(auto v, PopMark(at));
        MS_ASSIGN_OR_RETURN(Ref t, Tuple(std::move(v)));
        return Push(t);
      }
      case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
        std::vector<Ref> v(op - 0x84);
        for (size_t k = v.size(); k-- > 0;) {
          MS_ASSIGN_OR_RETURN(v[k], Pop(at));
        }
        MS_ASSIGN_OR_RETURN(Ref t, Tuple(std::move(v)));
        return Push(t);
      }
      case 'l': case 'd': {  // LIST, DICT (from the items above the mark)
        MS_ASSIGN_OR_RETURN(auto v, PopMark(at));
        if (op == 'd' && v.size() % 2) return BadAt(at, "DICT with an odd number of items");
        Ref r = Make(op == 'l' ? Obj::kList : Obj::kDict);
        r->items = std::move(v);
        return Push(r);
      }
      case 'a': case 'e': {  // APPEND, APPENDS
        std::vector<Ref> v;
        if (op == 'a') {
          MS_ASSIGN_OR_RETURN(Ref x, Pop(at));
          v.push_back(x);
        } else {
          MS_ASSIGN_OR_RETURN(v, PopMark(at));
        }
        if (stack_.empty() || stack_.back()->kind != Obj::kList) return BadAt(at, "appends to something that is not a list");
        for (auto& x : v) stack_.back()->items.push_back(std::move(x));
        return Status::Ok();
      }
      case 's': case 'u': {  // SETITEM, SETITEMS
        std::vector<Ref> v(2);
        if (op == 's') {
          MS_ASSIGN_OR_RETURN(v[1], Pop(at));
          MS_ASSIGN_OR_RETURN(v[0], Pop(at));
        } else {
          MS_ASSIGN_OR_RETURN(v, PopMark(at));
          if (v.size() % 2) return BadAt(at, "SETITEMS with an odd number of items");
        }
        if (stack_.empty() || stack_.back()->kind != Obj::kDict) return BadAt(at, "sets items of something that is not a dict");
        for (auto& x : v) stack_.back()->items.push_back(std::move(x));
        return Status::Ok();
      }
      case 'Q': {  // BINPERSID: ('storage', type, key, location, numel)
        MS_ASSIGN_OR_RETURN(Ref pid, Pop(at));
        if (pid->kind != Obj::kTuple || pid->items.size() != 5 || pid->items[0]->kind != Obj::kStr ||
            pid->items[0]->s != "storage" || pid->items[1]->kind != Obj::kGlobal ||
            pid->items[2]->kind != Obj::kStr || !Int(pid->items[4]).ok())
          return BadAt(at, "has a persistent id that is not torch.save's ('storage', type, key, location, numel)");
        const char* dtype = DtypeOfStorage(pid->items[1]->s);
        if (!dtype) return BadAt(at, "has a storage of type " + pid->items[1]->s + ", which the converter does not take");
        const int64_t numel = *Int(pid->items[4]);
        if (numel < 0) return BadAt(at, "has a storage of negative size");
        Ref s = Make(Obj::kStorage);
        s->s = dtype;
        s->key = pid->items[2]->s;
        s->numel = static_cast<uint64_t>(numel);
        return Push(s);
      }
      case 'R': {  // REDUCE
        MS_ASSIGN_OR_RETURN(Ref args, Pop(at));
        MS_ASSIGN_OR_RETURN(Ref f, Pop(at));
        MS_ASSIGN_OR_RETURN(Ref r, Call(f, args, at));
        return Push(r);
      }
      case 'b': {  // BUILD: a state dict's _metadata, a parameter's state: dropped
        MS_RETURN_IF_ERROR(Pop(at).status());
        if (stack_.empty() || (stack_.back()->kind != Obj::kDict && stack_.back()->kind != Obj::kTensor))
          return BadAt(at, "sets the state of something that is not a dict or a tensor");
        return Status::Ok();
      }
      case '0': return Pop(at).status();  // POP
      case '1': return PopMark(at).status();  // POP_MARK
      case '2':  // DUP
        if (stack_.empty()) return BadAt(at, "DUP on an empty stack");
        return Push(stack_.back());
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        return BadAt(at, std::string("uses the pickle opcode ") + hex +
                             ", which torch.save of a state dict never writes: refused");
      }
    }
  }

  const std::string& d_;
  std::string what_;
  size_t p_ = 0;
  bool stopped_ = false;
  std::vector<Ref> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Ref> memo_;
  std::vector<std::unique_ptr<Obj>> arena_;
};

bool RowMajor(const TorchTensor& t) {
  uint64_t want = 1;
  for (size_t k = t.shape.size(); k-- > 0;) {
    if (t.shape[k] != 1 && t.stride[k] != want) return false;
    want *= t.shape[k];
  }
  return true;
}

// The tensors of a (possibly nested) dict, keys joined with '.'.
Status Collect(const Ref& d, const std::string& prefix, int depth, const std::string& what,
               std::vector<std::pair<std::string, Ref>>* out, uint64_t* visited) {
  if (depth > kMaxDepth) return Status::InvalidArgument(what + ": dicts nested deeper than 16");
  for (size_t k = 0; k + 1 < d->items.size(); k += 2) {
    // A dict can hold itself (memo): bound the walk, not just its depth.
    if (++*visited > kMaxStack) return Status::InvalidArgument(what + ": more than 2^22 dict entries");
    const Ref& key = d->items[k];
    const Ref& v = d->items[k + 1];
    if (key->kind != Obj::kStr) return Status::InvalidArgument(what + ": a dict key is not a string");
    const std::string name = prefix.empty() ? key->s : prefix + "." + key->s;
    if (v->kind == Obj::kTensor) {
      out->emplace_back(name, v);
    } else if (v->kind == Obj::kDict) {
      MS_RETURN_IF_ERROR(Collect(v, name, depth + 1, what, out, visited));
    } else {
      return Status::InvalidArgument(what + ": '" + name +
                                     "' is not a tensor: the converter takes a state dict "
                                     "(a dict of tensors), such as pytorch_model.bin");
    }
  }
  return Status::Ok();
}

Result<TorchCheckpoint> Parse(ReadAt read, uint64_t size, const std::string& what) {
  ZipReader zip(read, size, what);
  MS_RETURN_IF_ERROR(zip.Open());
  TorchCheckpoint out;
  for (const auto& [name, e] : zip.entries()) {
    const size_t slash = name.find('/');
    if (slash != std::string::npos && name.compare(slash, std::string::npos, "/data.pkl") == 0) {
      if (!out.archive.empty()) return zip.Bad("holds two pickles (" + out.archive + "/data.pkl and " + name + ")");
      out.archive = name.substr(0, slash);
    }
  }
  if (out.archive.empty()) return zip.Bad("is a zip without <archive>/data.pkl: not a torch.save file");
  MS_ASSIGN_OR_RETURN(ZipEntry pkl, zip.Locate(out.archive + "/data.pkl"));
  if (pkl.size > kMaxPickle) return zip.Bad("has a data.pkl of " + std::to_string(pkl.size) + " bytes (at most 256 MiB)");
  if (auto bo = zip.entries().find(out.archive + "/byteorder"); bo != zip.entries().end()) {
    MS_ASSIGN_OR_RETURN(ZipEntry b, zip.Locate(bo->first));
    MS_ASSIGN_OR_RETURN(std::string order, read(b.data_offset, std::min<uint64_t>(b.size, 16)));
    if (order != "little") return zip.Bad("was written on a '" + order + "'-endian machine; only little-endian files are converted");
  }
  MS_ASSIGN_OR_RETURN(std::string pickle, read(pkl.data_offset, pkl.size));
  Unpickler u(pickle, what + " (" + out.archive + "/data.pkl)");
  MS_ASSIGN_OR_RETURN(Ref top, u.Run());
  if (top->kind != Obj::kDict)
    return zip.Bad("holds a pickled object that is not a dict: the converter takes a state dict");
  std::vector<std::pair<std::string, Ref>> found;
  uint64_t visited = 0;
  MS_RETURN_IF_ERROR(Collect(top, "", 0, what, &found, &visited));
  std::map<std::string, ZipEntry> located;
  std::map<std::string, int> seen;
  for (auto& [name, t] : found) {
    if (seen[name]++) return zip.Bad("names the tensor '" + name + "' twice");
    TorchTensor tt;
    tt.name = name;
    tt.dtype = t->s.empty() ? t->storage->s : t->s;
    tt.shape = t->shape;
    tt.stride = t->stride;
    tt.storage_offset = t->offset;
    tt.storage_key = t->storage->key;
    if (tt.dtype != t->storage->s && !t->s.empty() && t->storage->s != "U8")
      return zip.Bad("tensor '" + name + "' is " + tt.dtype + " over a " + t->storage->s + " storage");
    auto it = located.find(tt.storage_key);
    if (it == located.end()) {
      MS_ASSIGN_OR_RETURN(ZipEntry e, zip.Locate(out.archive + "/data/" + tt.storage_key));
      it = located.emplace(tt.storage_key, e).first;
    }
    tt.data_offset = it->second.data_offset;
    tt.data_bytes = it->second.size;
    const uint64_t es = DtypeBytes(tt.dtype);
    // The last element reached must lie inside the storage (its numel and its bytes).
    uint64_t last = tt.storage_offset, elems = 1;
    bool empty = false;
    for (size_t k = 0; k < tt.shape.size(); ++k) {
      if (tt.shape[k] == 0) empty = true;
      if (tt.shape[k] > (1ull << 40) || tt.stride[k] > (1ull << 40))
        return zip.Bad("tensor '" + name + "' has a size or stride past 2^40");
      // Sizes and strides are below 2^40 each, so each product fits; their sums are kept
      // below 2^62 (far past any file) so nothing wraps.
      uint64_t reach = 0;
      if (__builtin_mul_overflow(tt.shape[k] ? tt.shape[k] - 1 : 0, tt.stride[k], &reach) ||
          __builtin_add_overflow(last, reach, &last) || last > (1ull << 62) ||
          __builtin_mul_overflow(elems, tt.shape[k], &elems) || elems > (1ull << 40))
        return zip.Bad("tensor '" + name + "' has more than 2^40 elements or reaches past 2^62");
    }
    if (DtypeBytes(t->storage->s) * t->storage->numel != tt.data_bytes)
      return zip.Bad("storage " + tt.storage_key + " says " + std::to_string(t->storage->numel) + " " +
                     t->storage->s + " elements but holds " + std::to_string(tt.data_bytes) + " bytes");
    const uint64_t storage_elems = tt.data_bytes / es;
    if (!empty && last >= storage_elems)
      return zip.Bad("tensor '" + name + "' reaches element " + std::to_string(last) +
                     " of a storage of " + std::to_string(storage_elems) + " (" +
                     std::to_string(tt.data_bytes) + " bytes): truncated or inconsistent");
    tt.contiguous = RowMajor(tt);
    out.tensors.push_back(std::move(tt));
  }
  return out;
}

}  // namespace

Result<TorchCheckpoint> ReadTorchCheckpoint(const Env& env, const std::string& path) {
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  MS_ASSIGN_OR_RETURN(auto d, env.fs->OpenRoot(dir, false));
  MS_ASSIGN_OR_RETURN(std::shared_ptr<storage::File> f,
                      d->OpenFile(slash == std::string::npos ? path : path.substr(slash + 1),
                                  storage::OpenMode::kRead));
  MS_ASSIGN_OR_RETURN(auto info, f->Stat());
  ReadAt read = [f](uint64_t off, uint64_t n) -> Result<std::string> {
    std::string s(n, '\0');
    size_t got = 0;
    while (got < n) {
      MS_ASSIGN_OR_RETURN(size_t k, f->PRead(off + got, s.data() + got, n - got));
      if (k == 0) break;
      got += k;
    }
    s.resize(got);
    return s;
  };
  return Parse(read, info.size, path);
}

Result<TorchCheckpoint> ParseTorchCheckpoint(const std::string& bytes, const std::string& what) {
  ReadAt read = [&bytes](uint64_t off, uint64_t n) -> Result<std::string> {
    if (off >= bytes.size()) return std::string();
    return bytes.substr(off, n);
  };
  return Parse(read, bytes.size(), what);
}

}  // namespace modelsync::engine
