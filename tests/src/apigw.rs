//! API Gateway HTTP API routes as AWS states them, for the template test: which route keys API
//! Gateway accepts when the routes are created ([`check_route_keys`]), and which route a request
//! selects ([`select`], [`function_by_documentation`]).
//!
//! Sources, each rule below names its own:
//! - [ROUTES]: "Create routes for HTTP APIs": route = method + resource path, `ANY`, `$default`;
//!   a greedy path variable `{proxy+}` "must be at the end of the resource path"; "Routing API
//!   requests": a full match of route and method first, then a greedy route, then `$default`,
//!   and the `/pets/dog/1` example.
//! - CONFLICT: two differently named path variables at one level of the path are refused with
//!   409 `ConflictException` ("The provided route key … has a conflicting variable on the same
//!   hierarchical level as …") when the routes are created, and the stack rolls back. The HTTP
//!   API guide does not state it; REST APIs refuse the same in their resource tree ("A sibling
//!   ({id}) of this resource already has a variable path part -- only one is allowed"), and it is
//!   reported for HTTP APIs, e.g. after renaming `{id}` to `{productId}` on a deployed API
//!   (<https://dev.to/slsbytheodo/how-to-rename-api-gateway-path-parameters-on-aws-20fa>). Enforced
//!   here as reported: verified on paper, not against AWS.
//! - [SAM1949]: a route key ending in `/` is not accepted, and SAM passes it through without
//!   creating the route (<https://github.com/aws/serverless-application-model/issues/1949>).
//!
//! [ROUTES]: https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html
//! [SAM1949]: https://github.com/aws/serverless-application-model/issues/1949

use serde_yaml::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Methods a route key may name ([ROUTES]: an HTTP method, or `ANY`).
pub const METHODS: &[&str] = &["ANY", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// One segment of a route key's path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Segment {
    Literal(String),
    /// `{id}`: exactly one non-empty segment.
    Variable(String),
    /// `{proxy+}`: the rest of the path; only last.
    Greedy(String),
}

impl Segment {
    fn variable_name(&self) -> Option<&str> {
        match self {
            Segment::Literal(_) => None,
            Segment::Variable(n) | Segment::Greedy(n) => Some(n),
        }
    }
}

/// One HTTP API route as deployed.
#[derive(Clone, Debug)]
pub struct Route {
    pub function: String,
    /// The route key as API Gateway names it: `ANY /events/{id}`, or `$default`.
    pub key: String,
    pub method: String,
    /// `None` for `$default`.
    pub segments: Option<Vec<Segment>>,
}

/// A path variable's name. AWS publishes no grammar for it; this is a conservative subset (what
/// OpenAPI tooling and every example in [ROUTES] use), so anything it refuses is worth a look.
fn valid_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A route key's path, or why API Gateway (or SAM) would not create it: starts with `/`; no empty
/// segment, so no `//` and no trailing `/` ([SAM1949]); `{name}` or `{name+}` segments with a
/// valid name; a greedy variable only last ([ROUTES]).
pub fn parse_path(path: &str) -> Result<Vec<Segment>, String> {
    let rest = path.strip_prefix('/').ok_or_else(|| format!("{path}: must start with /"))?;
    if path.ends_with('/') {
        return Err(format!(
            "{path}: ends in `/`; HTTP APIs refuse such keys and SAM drops the route without an error \
             (aws/serverless-application-model#1949)"
        ));
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let mut out = Vec::with_capacity(parts.len());
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() {
            return Err(format!("{path}: empty segment"));
        }
        let segment = match p.strip_prefix('{').and_then(|v| v.strip_suffix('}')) {
            Some(inner) => {
                let (name, greedy) = match inner.strip_suffix('+') {
                    Some(name) => (name, true),
                    None => (inner, false),
                };
                if !valid_variable_name(name) {
                    return Err(format!("{path}: `{p}` is not a path variable name"));
                }
                if greedy && i != parts.len() - 1 {
                    return Err(format!("{path}: the greedy variable `{p}` must be the last segment"));
                }
                if greedy {
                    Segment::Greedy(name.into())
                } else {
                    Segment::Variable(name.into())
                }
            }
            None if p.contains(['{', '}']) => return Err(format!("{path}: malformed segment `{p}`")),
            None => Segment::Literal(p.to_string()),
        };
        out.push(segment);
    }
    Ok(out)
}

/// `$default`, or `METHOD /path` ([ROUTES]); `(method, segments)` with `None` for `$default`.
pub fn parse_route_key(key: &str) -> Result<(String, Option<Vec<Segment>>), String> {
    if key == "$default" {
        return Ok(("ANY".into(), None));
    }
    let (method, path) = key.split_once(' ').ok_or_else(|| format!("`{key}`: not `METHOD /path` or `$default`"))?;
    if !METHODS.contains(&method) {
        return Err(format!("`{key}`: unknown method {method}"));
    }
    Ok((method.to_string(), Some(parse_path(path)?)))
}

/// Every reason API Gateway would refuse this set of route keys of one API: a key it cannot parse
/// ([`parse_route_key`]), a key declared twice, and two differently named variables (greedy or
/// not) under the same parent (CONFLICT above). Parents are compared with their variables by name,
/// since that is what makes `/events/{id}/x` and `/events/{id}/y` siblings in API Gateway's tree;
/// a literal beside a variable is fine ([ROUTES]: `GET /pets/dog/1` beside `GET /pets/dog/{id}`).
pub fn check_route_keys<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    // parent path (segments) -> variable segment seen there, and the key that brought it
    let mut variables: BTreeMap<Vec<Segment>, (Segment, String)> = BTreeMap::new();
    for key in keys {
        if !seen.insert(key.to_string()) {
            problems.push(format!("`{key}` is declared twice"));
            continue;
        }
        let segments = match parse_route_key(key) {
            Ok((_, Some(s))) => s,
            Ok((_, None)) => continue,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        for (i, seg) in segments.iter().enumerate() {
            if seg.variable_name().is_none() {
                continue;
            }
            let parent = segments[..i].to_vec();
            match variables.get(&parent) {
                None => {
                    variables.insert(parent, (seg.clone(), key.to_string()));
                }
                Some((other, _)) if other == seg => {}
                Some((other, other_key)) => problems.push(format!(
                    "`{key}` has a conflicting variable on the same hierarchical level as `{other_key}` \
                     ({seg:?} vs {other:?}): 409 ConflictException"
                )),
            }
        }
    }
    problems
}

/// How API Gateway behaves where AWS documents nothing; everything [ROUTES] documents is fixed in
/// [`select`], everything else is one of these switches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Behaviour {
    /// `{proxy+}` matches an empty remainder: `/bookings/` selects `ANY /bookings/{proxy+}`.
    /// Reported to work (storacha/w3infra#166 serves `/metrics/` that way); not documented.
    pub empty_remainder: bool,
    /// `{proxy+}` matches a remainder ending in `/`: `/bookings/1/` selects
    /// `ANY /bookings/{proxy+}` with `1/`. Not documented.
    pub slash_ended_remainder: bool,
    /// Of two greedy routes that both match, the longer prefix wins (otherwise: the shorter).
    /// Not documented.
    pub longest_greedy_prefix: bool,
    /// API Gateway drops a trailing `/` before matching (`/health/` selects `ANY /health`).
    /// Reported not to happen on HTTP APIs (it does on REST APIs:
    /// aws-powertools/powertools-lambda-python#1552, #1609); `rawPath` keeps the slash either way.
    pub folds_trailing_slash: bool,
}

impl Behaviour {
    /// What the template is designed for (and what the routers' tests exercise).
    pub const REPORTED: Behaviour = Behaviour {
        empty_remainder: true,
        slash_ended_remainder: true,
        longest_greedy_prefix: true,
        folds_trailing_slash: false,
    };

    /// Every combination: a request form is verified by the documentation alone when all of them
    /// send it to the same function.
    pub fn all() -> Vec<Behaviour> {
        (0..16u8)
            .map(|b| Behaviour {
                empty_remainder: b & 1 != 0,
                slash_ended_remainder: b & 2 != 0,
                longest_greedy_prefix: b & 4 != 0,
                folds_trailing_slash: b & 8 != 0,
            })
            .collect()
    }
}

/// Literal and variable segments against request segments; `Some(literal count)` when they match.
fn prefix_match(pattern: &[Segment], segs: &[&str]) -> Option<usize> {
    let mut literals = 0;
    for (p, s) in pattern.iter().zip(segs) {
        match p {
            Segment::Literal(l) if l == s => literals += 1,
            Segment::Variable(_) if !s.is_empty() => {}
            _ => return None,
        }
    }
    Some(literals)
}

/// The route API Gateway selects for `method path` (the path after the stage), under `how`.
/// `Err` when even the model cannot choose (two equally specific matches) or nothing matches and
/// there is no `$default`.
pub fn select<'a>(routes: &'a [Route], method: &str, path: &str, how: Behaviour) -> Result<&'a Route, String> {
    assert!(path.starts_with('/'), "{path}: not an absolute path");
    let path = match path.strip_suffix('/') {
        Some(p) if how.folds_trailing_slash && !p.is_empty() => p,
        _ => path,
    };
    let segs: Vec<&str> = path[1..].split('/').collect();
    let methods = |r: &&Route| r.method == "ANY" || r.method == method;
    let is_greedy = |s: &Segment| matches!(s, Segment::Greedy(_));
    // 1. Full match of route and method; literal segments beat variables (`GET /pets/dog/1` before
    //    `GET /pets/dog/{id}`), a route for this method beats ANY.
    let mut full: Vec<((usize, bool), &Route)> = routes
        .iter()
        .filter(methods)
        .filter_map(|r| {
            let pattern = r.segments.as_ref()?;
            if pattern.iter().any(is_greedy) || pattern.len() != segs.len() {
                return None;
            }
            prefix_match(pattern, &segs).map(|literals| ((literals, r.method == method), r))
        })
        .collect();
    full.sort_by_key(|(rank, _)| std::cmp::Reverse(*rank));
    if let Some((rank, best)) = full.first() {
        if let Some((other_rank, other)) = full.get(1) {
            if other_rank == rank {
                return Err(format!("{method} {path}: {} and {} match equally", best.key, other.key));
            }
        }
        return Ok(best);
    }
    // 2. A greedy route: its prefix, then one or more segments ("catches all child resources").
    let mut greedy: Vec<(usize, &Route)> = routes
        .iter()
        .filter(methods)
        .filter_map(|r| {
            let pattern = r.segments.as_ref()?;
            let (last, prefix) = pattern.split_last()?;
            if !is_greedy(last) || segs.len() <= prefix.len() {
                return None; // `/events` is not a child of `/events/{proxy+}`
            }
            prefix_match(prefix, &segs)?;
            let rest = &segs[prefix.len()..];
            let allowed = if rest == [""] {
                how.empty_remainder
            } else if rest.iter().any(|s| s.is_empty()) {
                how.slash_ended_remainder
            } else {
                true
            };
            allowed.then_some((prefix.len(), r))
        })
        .collect();
    // A route for this method beats ANY (AWS's example: `GET /pets/{proxy+}` over `ANY /{proxy+}`);
    // between routes of the same method the prefix length decides, one way or the other.
    let rank = |(len, r): &(usize, &Route)| {
        let len = if how.longest_greedy_prefix { *len as isize } else { -(*len as isize) };
        std::cmp::Reverse((r.method == method, len))
    };
    greedy.sort_by_key(rank);
    if let Some(best) = greedy.first() {
        if let Some(other) = greedy.get(1) {
            if rank(other) == rank(best) {
                let (best, other) = (best.1, other.1);
                return Err(format!("{method} {path}: {} and {} match equally", best.key, other.key));
            }
        }
        return Ok(best.1);
    }
    // 3. `$default`.
    routes.iter().find(|r| r.segments.is_none()).ok_or_else(|| format!("{method} {path}: no route, no $default"))
}

/// The function every behaviour in [`Behaviour::all`] sends the request to, or a description of
/// how they disagree.
pub fn function_by_documentation(routes: &[Route], method: &str, path: &str) -> Result<String, String> {
    // function (or why undecided) -> the routes and behaviours that lead there
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for how in Behaviour::all() {
        let (outcome, why) = match select(routes, method, path, how) {
            Ok(r) => (r.function.clone(), format!("{} if {how:?}", r.key)),
            Err(e) => (format!("undecided: {e}"), format!("{how:?}")),
        };
        seen.entry(outcome).or_default().push(why);
    }
    if seen.len() == 1 {
        return Ok(seen.into_keys().next().unwrap_or_default());
    }
    Err(seen.iter().map(|(outcome, why)| format!("{outcome} via {}", why[0])).collect::<Vec<_>>().join("; "))
}

/// A route for a model test: the function is the key itself.
pub fn route(key: &str, function: &str) -> Route {
    let (method, segments) = parse_route_key(key).unwrap_or_else(|e| panic!("{e}"));
    Route { function: function.to_string(), key: key.to_string(), method, segments }
}

/// Through `!Ref`, `!Sub` and the other short forms to the value.
pub fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        v => v,
    }
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    untag(v).get(key).map(untag)
}

/// Every HttpApi event of every function of a SAM template, as deployed: the function, the route key.
pub fn template_routes(t: &Value) -> Vec<Route> {
    let resources = get(t, "Resources").and_then(Value::as_mapping).expect("Resources");
    let mut out = Vec::new();
    for (id, r) in resources {
        if get(r, "Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let id = id.as_str().expect("logical id");
        let Some(events) = get(r, "Properties").and_then(|p| get(p, "Events")).and_then(Value::as_mapping) else {
            continue;
        };
        for (name, e) in events {
            if get(e, "Type").and_then(Value::as_str) != Some("HttpApi") {
                continue;
            }
            let props = get(e, "Properties");
            let prop = |k: &str| props.and_then(|p| get(p, k)).and_then(Value::as_str).map(String::from);
            let method = prop("Method").unwrap_or_else(|| "ANY".into()).to_uppercase();
            // SAM: `Path: $default` (or neither Path nor Method) is the API's `$default` route.
            let key = match prop("Path").as_deref() {
                None | Some("$default") => {
                    assert_eq!(method, "ANY", "{id}.{name:?}: the $default route takes every method");
                    "$default".to_string()
                }
                Some(path) => format!("{method} {path}"),
            };
            out.push(route(&key, id));
        }
    }
    out
}
