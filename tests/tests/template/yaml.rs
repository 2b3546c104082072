use serde_yaml::Value;

pub fn template() -> Value {
    let path = tests::workspace_root().join("template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_yaml::from_str(&text).expect("template.yaml is YAML")
}

/// CloudFormation short forms (`!Ref`, `!Sub`, `!GetAtt`, `!If`) parse as tagged values; look through
/// the tag to the value.
pub fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        v => v,
    }
}

pub fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    let mut cur = untag(v);
    for (i, key) in path.iter().enumerate() {
        cur = untag(cur.get(*key).unwrap_or_else(|| panic!("template has no {}", path[..=i].join("."))));
    }
    cur
}

pub fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path).as_str().unwrap_or_else(|| panic!("{} is not a string", path.join(".")))
}

pub fn seq(v: &Value) -> &[Value] {
    untag(v).as_sequence().map(Vec::as_slice).unwrap_or_else(|| panic!("not a list: {v:?}"))
}

pub fn functions(t: &Value) -> Vec<(String, &Value)> {
    at(t, &["Resources"])
        .as_mapping()
        .expect("Resources is a mapping")
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::Function"))
        .map(|(id, r)| (id.as_str().expect("logical id").to_string(), r))
        .collect()
}

/// `Fn::If` / `Ref` / `Condition` as serde_yaml reads the short forms.
pub fn tagged<'a>(v: &'a Value, tag: &str) -> Option<&'a Value> {
    match v {
        Value::Tagged(t) if t.tag == tag => Some(&t.value),
        _ => None,
    }
}

/// Like [`at`], but the value at the end keeps its tag (`!If`, `!Ref`).
pub fn raw_at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    let (last, parents) = path.split_last().expect("a path");
    at(v, parents).get(*last).unwrap_or_else(|| panic!("template has no {}", path.join(".")))
}

pub fn ref_name(v: &Value) -> Option<&str> {
    tagged(v, "Ref").and_then(Value::as_str)
}

pub fn resources_of_type<'a>(t: &'a Value, ty: &str) -> Vec<(String, &'a Value)> {
    at(t, &["Resources"])
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(ty))
        .map(|(id, r)| (id.as_str().unwrap().to_string(), r))
        .collect()
}
