//! The door's fast path (`pipeline.validate.DoorValidator`): a payload's bytes straight into the
//! raw event's dict, in one pass that also checks what the Python path checks after orjson.loads
//! (nesting depth, repeated keys, control escapes, schema_version, the raw schema file).
//!
//! It only ever says yes. Every error, and every rare case this module does not model (control
//! escapes, integers beyond i64, floats beyond f64, payloads over the field or event limit, schema
//! keywords it does not evaluate), gets `None`, and the Python path (`_py_decode`) decides and
//! names the error. So a yes must be exactly the dict orjson makes, of a payload the Python path
//! accepts unchanged; anything less certain is a `None`.
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyList, PyString};

// The JSON kinds a schema node allows (a bit each).
const NULL: u8 = 1;
const BOOL: u8 = 2;
/// An integer literal: JSON Schema's "integer", and a "number".
const INT: u8 = 4;
/// A literal with a fraction or an exponent (orjson makes a float): a "number" only.
const FLOAT: u8 = 8;
const STR: u8 = 16;
const ARR: u8 = 32;
const OBJ: u8 = 64;
const ANY: u8 = 127;

/// Deeper than this is left to the Python path whatever max_json_depth says: the recursion here
/// stays shallow (orjson itself stops at 1024).
const MAX_DEPTH: usize = 512;
/// How many strings a pattern (or the version check) remembers having accepted, so the Python
/// oracle is asked once per distinct value (schema_version takes a handful of values).
const CACHE: usize = 64;
/// An object's keys outside its schema's properties are compared one by one up to this many,
/// then through a hash set (a large object of free keys stays linear).
const LINEAR_KEYS: usize = 16;

// Keywords that only annotate: they never change what fastjsonschema accepts.
const ANNOTATIONS: [&str; 12] = [
    "$schema",
    "$id",
    "$comment",
    "$defs",
    "definitions",
    "title",
    "description",
    "examples",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
];
// Keywords evaluated here (any other keyword makes its node a `never`).
const EVALUATED: [&str; 11] = [
    "type",
    "properties",
    "required",
    "anyOf",
    "items",
    "maxLength",
    "minLength",
    "pattern",
    "minimum",
    "additionalProperties",
    "$ref",
];

struct Prop {
    key: Box<str>,
    /// The key as a Python str, made once: every event's dict shares it.
    name: Py<PyString>,
    node: usize,
}

/// One schema (or sub-schema), compiled to what one pass over a value can check.
struct Node {
    kinds: u8,
    /// A keyword (or a form of one) this module does not evaluate: every value gets `None`.
    never: bool,
    min_len: usize,
    max_len: Option<usize>,
    pattern: Option<usize>,
    minimum: Option<i64>,
    props: Vec<Prop>,
    /// Bits of `props` that must be present.
    required: u64,
    /// anyOf of `required` lists: one of these masks must be wholly present (none: no anyOf).
    any_of: Vec<u64>,
    items: usize,
    /// additionalProperties: false.
    closed: bool,
    /// `$ref` to another node (resolved away after compiling).
    refer: Option<usize>,
}

impl Node {
    fn any() -> Self {
        Node {
            kinds: ANY,
            never: false,
            min_len: 0,
            max_len: None,
            pattern: None,
            minimum: None,
            props: Vec::new(),
            required: 0,
            any_of: Vec::new(),
            items: 0,
            closed: false,
            refer: None,
        }
    }

    fn never() -> Self {
        Node { never: true, ..Node::any() }
    }
}

/// A string check answered by Python (a compiled `re` pattern's `search`, or the door's version
/// check), remembering the strings it accepted.
struct Oracle {
    call: Py<PyAny>,
    yes: Mutex<Vec<Box<str>>>,
}

impl Oracle {
    fn new(call: Py<PyAny>) -> Self {
        Oracle { call, yes: Mutex::new(Vec::new()) }
    }

    fn accepts(&self, py: Python<'_>, text: &str) -> bool {
        if let Ok(yes) = self.yes.lock() {
            if yes.iter().any(|y| **y == *text) {
                return true;
            }
        }
        // The lock is not held while Python runs (the oracle could come back here).
        let said = match self.call.bind(py).call1((text,)) {
            Ok(answer) => !answer.is_none() && answer.is_truthy().unwrap_or(false),
            Err(_) => false,
        };
        if said {
            if let Ok(mut yes) = self.yes.lock() {
                if yes.len() < CACHE {
                    yes.push(text.into());
                }
            }
        }
        said
    }
}

struct Compiler<'py> {
    py: Python<'py>,
    root: Bound<'py, PyAny>,
    regexes: Bound<'py, PyDict>,
    nodes: Vec<Node>,
    patterns: Vec<Oracle>,
    defs: Vec<(String, usize)>,
}

impl<'py> Compiler<'py> {
    /// The node of `schema` (its index in `nodes`); what cannot be evaluated becomes a `never`.
    fn compile(&mut self, schema: &Bound<'py, PyAny>) -> PyResult<usize> {
        let at = self.nodes.len();
        self.nodes.push(Node::never());
        let node = match schema.cast::<PyDict>() {
            Ok(dict) => self.node(dict)?.unwrap_or_else(Node::never),
            Err(_) => match schema.cast::<PyBool>() {
                Ok(b) if b.is_true() => Node::any(),
                _ => Node::never(),
            },
        };
        if let Some(slot) = self.nodes.get_mut(at) {
            *slot = node;
        }
        Ok(at)
    }

    /// `None`: the schema uses something not evaluated here.
    fn node(&mut self, schema: &Bound<'py, PyDict>) -> PyResult<Option<Node>> {
        let mut node = Node::any();
        let mut evaluated = 0;
        for key in schema.keys() {
            let Ok(key) = key.extract::<String>() else { return Ok(None) };
            if EVALUATED.contains(&key.as_str()) {
                evaluated += 1;
            } else if !ANNOTATIONS.contains(&key.as_str()) {
                return Ok(None);
            }
        }
        if let Some(target) = schema.get_item("$ref")? {
            // $ref beside other keywords: fastjsonschema's reading of that is not modelled.
            let Ok(target) = target.extract::<String>() else { return Ok(None) };
            if evaluated != 1 {
                return Ok(None);
            }
            let Some(name) =
                target.strip_prefix("#/$defs/").or_else(|| target.strip_prefix("#/definitions/"))
            else {
                return Ok(None);
            };
            node.refer = Some(self.definition(name, target.starts_with("#/$defs/"))?);
            return Ok(Some(node));
        }
        if let Some(kinds) = schema.get_item("type")? {
            let names: Vec<String> = if let Ok(one) = kinds.extract::<String>() {
                vec![one]
            } else if let Ok(many) = kinds.extract::<Vec<String>>() {
                many
            } else {
                return Ok(None);
            };
            node.kinds = 0;
            for name in names {
                node.kinds |= match name.as_str() {
                    "null" => NULL,
                    "boolean" => BOOL,
                    "integer" => INT,
                    "number" => INT | FLOAT,
                    "string" => STR,
                    "array" => ARR,
                    "object" => OBJ,
                    _ => return Ok(None),
                };
            }
        }
        if let Some(props) = schema.get_item("properties")? {
            let Ok(props) = props.cast::<PyDict>() else { return Ok(None) };
            for (key, sub) in props.iter() {
                let Ok(key) = key.extract::<String>() else { return Ok(None) };
                let child = self.compile(&sub)?;
                node.props.push(Prop {
                    name: PyString::intern(self.py, &key).unbind(),
                    key: key.into(),
                    node: child,
                });
            }
        }
        if let Some(required) = schema.get_item("required")? {
            let Ok(names) = required.extract::<Vec<String>>() else { return Ok(None) };
            node.required = Self::mask(&mut node, self.py, &names);
        }
        if let Some(any_of) = schema.get_item("anyOf")? {
            let Ok(branches) = any_of.extract::<Vec<Bound<'py, PyAny>>>() else { return Ok(None) };
            for branch in branches {
                // only branches of the form {"required": [...]}
                let Ok(branch) = branch.cast::<PyDict>() else { return Ok(None) };
                let Some(names) = branch.get_item("required")? else { return Ok(None) };
                let Ok(names) = names.extract::<Vec<String>>() else { return Ok(None) };
                if branch.len() != 1 {
                    return Ok(None);
                }
                let mask = Self::mask(&mut node, self.py, &names);
                node.any_of.push(mask);
            }
            if node.any_of.is_empty() {
                return Ok(None);
            }
        }
        if node.props.len() > 64 {
            return Ok(None);
        }
        if let Some(items) = schema.get_item("items")? {
            if items.cast::<PyDict>().is_err() && items.cast::<PyBool>().is_err() {
                return Ok(None);
            }
            node.items = self.compile(&items)?;
        }
        if let Some(n) = schema.get_item("maxLength")? {
            let Ok(n) = n.extract::<usize>() else { return Ok(None) };
            node.max_len = Some(n);
        }
        if let Some(n) = schema.get_item("minLength")? {
            let Ok(n) = n.extract::<usize>() else { return Ok(None) };
            node.min_len = n;
        }
        if let Some(pattern) = schema.get_item("pattern")? {
            let Some(search) = self.regexes.get_item(&pattern)? else { return Ok(None) };
            self.patterns.push(Oracle::new(search.getattr("search")?.unbind()));
            node.pattern = Some(self.patterns.len() - 1);
        }
        if let Some(n) = schema.get_item("minimum")? {
            if n.cast::<PyBool>().is_ok() {
                return Ok(None);
            }
            let Ok(n) = n.extract::<i64>() else { return Ok(None) };
            node.minimum = Some(n);
        }
        if let Some(extra) = schema.get_item("additionalProperties")? {
            match extra.cast::<PyBool>() {
                Ok(b) => node.closed = !b.is_true(),
                Err(_) => return Ok(None),
            }
        }
        Ok(Some(node))
    }

    /// The bits of `names` among the node's properties (a name not among them is added, with no
    /// schema of its own).
    fn mask(node: &mut Node, py: Python<'py>, names: &[String]) -> u64 {
        let mut mask = 0u64;
        for name in names {
            let at = match node.props.iter().position(|p| *p.key == **name) {
                Some(at) => at,
                None => {
                    node.props.push(Prop {
                        key: name.as_str().into(),
                        name: PyString::intern(py, name).unbind(),
                        node: 0,
                    });
                    node.props.len() - 1
                }
            };
            // more than 64 properties makes the node a `never` (checked by the caller)
            mask |= 1u64.checked_shl(at as u32).unwrap_or(0);
        }
        mask
    }

    fn definition(&mut self, name: &str, dollar: bool) -> PyResult<usize> {
        if let Some((_, at)) = self.defs.iter().find(|(n, _)| n == name) {
            return Ok(*at);
        }
        let defs = self.root.get_item(if dollar { "$defs" } else { "definitions" }).ok();
        let schema = defs.and_then(|d| d.get_item(name).ok());
        let at = self.nodes.len();
        self.defs.push((name.to_string(), at));
        match schema {
            Some(schema) => self.compile(&schema),
            None => {
                self.nodes.push(Node::never());
                Ok(at)
            }
        }
    }
}

/// A raw schema and the door's limits: `decode(payload)` is the event's dict, or `None` when the
/// Python path has to look (see the module's doc).
#[pyclass(frozen, module = "newspipe_native")]
pub struct Door {
    nodes: Vec<Node>,
    root: usize,
    patterns: Vec<Oracle>,
    version_key: Py<PyString>,
    version: Oracle,
    max_bytes: usize,
    max_depth: usize,
}

#[pymethods]
impl Door {
    /// `schema`: the schema file as a dict; `regexes`: fastjsonschema's compiled patterns by
    /// their text (what it searches with); `version_ok(str) -> bool`: the door's schema_version
    /// check; payloads over `max_bytes` and containers deeper than `max_depth` get `None`.
    #[new]
    fn new(
        schema: &Bound<'_, PyDict>,
        regexes: &Bound<'_, PyDict>,
        version_key: &Bound<'_, PyString>,
        version_ok: &Bound<'_, PyAny>,
        max_bytes: usize,
        max_depth: usize,
    ) -> PyResult<Self> {
        let py = schema.py();
        let mut compiler = Compiler {
            py,
            root: schema.clone().into_any(),
            regexes: regexes.clone(),
            nodes: vec![Node::any()],
            patterns: Vec::new(),
            defs: Vec::new(),
        };
        let root = compiler.compile(schema.as_any())?;
        let mut nodes = compiler.nodes;
        // resolve $ref: every child index to the node its chain of references ends at
        let resolve = |nodes: &[Node], mut at: usize| -> usize {
            for _ in 0..=nodes.len() {
                match nodes.get(at).and_then(|n| n.refer) {
                    Some(next) => at = next,
                    None => return at,
                }
            }
            usize::MAX // a cycle of references: `value` answers None for a missing node
        };
        let targets: Vec<(usize, Vec<usize>)> = nodes
            .iter()
            .map(|n| {
                (
                    resolve(&nodes, n.items),
                    n.props.iter().map(|p| resolve(&nodes, p.node)).collect(),
                )
            })
            .collect();
        for (node, (items, props)) in nodes.iter_mut().zip(targets) {
            node.items = items;
            for (p, to) in node.props.iter_mut().zip(props) {
                p.node = to;
            }
        }
        let root = resolve(&nodes, root);
        Ok(Door {
            nodes,
            root,
            patterns: compiler.patterns,
            version_key: version_key.clone().unbind(),
            version: Oracle::new(version_ok.clone().unbind()),
            max_bytes,
            max_depth: max_depth.min(MAX_DEPTH),
        })
    }

    /// The event's dict, or `None`: not bytes, or anything the Python path has to judge.
    fn decode<'py>(&self, payload: &Bound<'py, PyAny>) -> Option<Bound<'py, PyDict>> {
        let py = payload.py();
        let bytes = payload.cast_exact::<PyBytes>().ok()?.as_bytes();
        if bytes.len() > self.max_bytes {
            return None;
        }
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parser = Parser { py, door: self, s: bytes, text, i: 0, depth: 0 };
        parser.ws();
        if parser.peek()? != b'{' {
            return None;
        }
        let obj = parser.value(self.root)?;
        parser.ws();
        if parser.i != bytes.len() {
            return None;
        }
        let dict = obj.cast_into::<PyDict>().ok()?;
        let version = dict.get_item(self.version_key.bind(py)).ok()??;
        let version = version.cast::<PyString>().ok()?.to_str().ok()?;
        self.version.accepts(py, version).then_some(dict)
    }
}

struct Parser<'a, 'py> {
    py: Python<'py>,
    door: &'a Door,
    s: &'a [u8],
    /// `s` as text (checked once): strings without escapes are slices of it.
    text: &'a str,
    i: usize,
    depth: usize,
}

fn is_digit(b: Option<u8>) -> bool {
    matches!(b, Some(b'0'..=b'9'))
}

fn hex4(s: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &b in s.get(..4)? {
        v = v * 16 + (b as char).to_digit(16)?;
    }
    Some(v)
}

impl<'a, 'py> Parser<'a, 'py> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.i += 1)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        (self.s.get(self.i..)?.starts_with(word)).then(|| self.i += word.len())
    }

    fn digits(&mut self) -> Option<()> {
        if !is_digit(self.peek()) {
            return None;
        }
        while is_digit(self.peek()) {
            self.i += 1;
        }
        Some(())
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= self.door.max_depth).then_some(())
    }

    fn value(&mut self, at: usize) -> Option<Bound<'py, PyAny>> {
        let door: &'a Door = self.door;
        let node = door.nodes.get(at)?;
        if node.never {
            return None;
        }
        let py = self.py;
        let kind = |k: u8| (node.kinds & k != 0).then_some(());
        match self.peek()? {
            b'{' => {
                kind(OBJ)?;
                self.object(node)
            }
            b'[' => {
                kind(ARR)?;
                self.array(node)
            }
            b'"' => {
                kind(STR)?;
                let text = self.string()?;
                if node.max_len.is_some() || node.min_len > 0 {
                    let chars = text.chars().count();
                    if chars < node.min_len || node.max_len.is_some_and(|m| chars > m) {
                        return None;
                    }
                }
                if let Some(p) = node.pattern {
                    if !self.door.patterns.get(p)?.accepts(py, &text) {
                        return None;
                    }
                }
                Some(PyString::new(py, &text).into_any())
            }
            b't' => {
                kind(BOOL)?;
                self.literal(b"true")?;
                Some(PyBool::new(py, true).to_owned().into_any())
            }
            b'f' => {
                kind(BOOL)?;
                self.literal(b"false")?;
                Some(PyBool::new(py, false).to_owned().into_any())
            }
            b'n' => {
                kind(NULL)?;
                self.literal(b"null")?;
                Some(py.None().into_bound(py))
            }
            _ => self.number(node),
        }
    }

    fn number(&mut self, node: &Node) -> Option<Bound<'py, PyAny>> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits()?,
            _ => return None,
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.digits()?;
            float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.digits()?;
            float = true;
        }
        let literal = self.text.get(start..self.i)?;
        if float {
            // orjson refuses what overflows f64; a minimum on a float is left to Python
            if node.kinds & FLOAT == 0 || node.minimum.is_some() {
                return None;
            }
            let v: f64 = literal.parse().ok()?;
            v.is_finite().then(|| PyFloat::new(self.py, v).into_any())
        } else {
            if node.kinds & INT == 0 {
                return None;
            }
            // beyond i64 orjson makes an int up to u64 and a float past that: left to Python
            let v: i64 = literal.parse().ok()?;
            if node.minimum.is_some_and(|m| v < m) {
                return None;
            }
            v.into_pyobject(self.py).ok().map(Bound::into_any)
        }
    }

    /// A string at `i` (its opening quote), decoded; `None` for invalid JSON, a lone surrogate
    /// (orjson refuses it) or a C0 control other than TAB, LF, CR (the Python path's business).
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.i += 1;
        let start = self.i;
        loop {
            match self.peek()? {
                b'"' => {
                    let text = self.text.get(start..self.i)?;
                    self.i += 1;
                    return Some(Cow::Borrowed(text));
                }
                b'\\' => break,
                0..=0x1F => return None,
                _ => self.i += 1,
            }
        }
        let mut out = String::from(self.text.get(start..self.i)?);
        loop {
            let run = self.i;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.i += 1;
            }
            out.push_str(self.text.get(run..self.i)?);
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(Cow::Owned(out));
                }
                b'\\' => {
                    self.i += 1;
                    let c = match self.peek()? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let c = self.unicode_escape()?;
                            out.push(c);
                            continue;
                        }
                        _ => return None, // \b, \f (controls) and what is not an escape
                    };
                    self.i += 1;
                    out.push(c);
                }
                _ => return None,
            }
        }
    }

    /// `\uXXXX` (or a surrogate pair of them) with `i` at the `u`.
    fn unicode_escape(&mut self) -> Option<char> {
        let hi = hex4(self.s.get(self.i + 1..)?)?;
        self.i += 5;
        let code = match hi {
            0xD800..=0xDBFF => {
                if self.s.get(self.i..self.i + 2)? != b"\\u" {
                    return None;
                }
                let lo = hex4(self.s.get(self.i + 2..)?)?;
                if !(0xDC00..=0xDFFF).contains(&lo) {
                    return None;
                }
                self.i += 6;
                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
            }
            0xDC00..=0xDFFF => return None,
            0x09 | 0x0A | 0x0D => hi,
            0..=0x1F => return None,
            _ => hi,
        };
        char::from_u32(code)
    }

    fn object(&mut self, node: &'a Node) -> Option<Bound<'py, PyAny>> {
        self.enter()?;
        self.i += 1;
        let py = self.py;
        let dict = PyDict::new(py);
        let mut seen = 0u64;
        let mut others: Vec<Cow<'a, str>> = Vec::new();
        let mut other_set: Option<HashSet<Cow<'a, str>>> = None;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
        } else {
            loop {
                if self.peek()? != b'"' {
                    return None;
                }
                let key = self.string()?;
                self.ws();
                self.eat(b':')?;
                self.ws();
                let (name, child) = match node.props.iter().position(|p| *p.key == *key) {
                    Some(at) => {
                        let bit = 1u64.checked_shl(at as u32)?;
                        if seen & bit != 0 {
                            return None; // a repeated key
                        }
                        seen |= bit;
                        let prop = node.props.get(at)?;
                        (prop.name.bind(py).clone().into_any(), prop.node)
                    }
                    None => {
                        if node.closed {
                            return None;
                        }
                        let name = PyString::new(py, &key).into_any();
                        if let Some(set) = other_set.as_mut() {
                            if !set.insert(key) {
                                return None;
                            }
                        } else if others.contains(&key) {
                            return None;
                        } else {
                            others.push(key);
                            if others.len() > LINEAR_KEYS {
                                other_set = Some(others.drain(..).collect());
                            }
                        }
                        (name, 0)
                    }
                };
                let value = self.value(child)?;
                dict.set_item(name, value).ok()?;
                self.ws();
                match self.peek()? {
                    b',' => {
                        self.i += 1;
                        self.ws();
                    }
                    b'}' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        if node.required & !seen != 0 {
            return None;
        }
        if !node.any_of.is_empty() && !node.any_of.iter().any(|m| m & !seen == 0) {
            return None;
        }
        self.depth -= 1;
        Some(dict.into_any())
    }

    fn array(&mut self, node: &'a Node) -> Option<Bound<'py, PyAny>> {
        self.enter()?;
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.peek()? == b']' {
            self.i += 1;
        } else {
            loop {
                items.push(self.value(node.items)?);
                self.ws();
                match self.peek()? {
                    b',' => {
                        self.i += 1;
                        self.ws();
                    }
                    b']' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        PyList::new(self.py, items).ok().map(Bound::into_any)
    }
}
