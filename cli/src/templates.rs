//! `template cloudformation|terraform|cdk`: the table as infrastructure as code, the same table
//! `table create` makes (on demand; a KV table with TTL on `expires`).

use serde_json::json;

use crate::args::{TemplateArgs, TemplateFormat};
use crate::render::Report;
use crate::{CommandResult, Exit, Failure};

struct Table<'a> {
    name: &'a str,
    partition_key: &'a str,
    sort_key: Option<&'a str>,
    ttl: bool,
}

pub fn template(args: &TemplateArgs) -> CommandResult {
    dynalease::table::check_table_name(&args.table).map_err(Failure::from)?;
    if args.kv && args.sort_key.as_deref().is_some_and(|key| key != "sk") {
        return Err(Failure::new(Exit::Usage, "a KV table's keys are pk and sk: drop --sort-key"));
    }
    let table = if args.kv {
        Table { name: &args.table, partition_key: "pk", sort_key: Some("sk"), ttl: true }
    } else {
        Table { name: &args.table, partition_key: "id", sort_key: args.sort_key.as_deref(), ttl: false }
    };
    let text = match args.format {
        TemplateFormat::Cloudformation => cloudformation(&table),
        TemplateFormat::Terraform => terraform(&table),
        TemplateFormat::Cdk => cdk(&table),
    };
    Ok(Report::new(text.clone(), json!({"format": format!("{:?}", args.format).to_lowercase(), "template": text})))
}

/// A logical or resource name from the table name: letters and digits only.
fn identifier(name: &str) -> String {
    let mut out: String = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .map(|part| part[..1].to_ascii_uppercase() + &part[1..])
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "Table");
    }
    out
}

fn keys(table: &Table) -> Vec<(&'static str, String)> {
    let mut keys = vec![("HASH", table.partition_key.to_owned())];
    if let Some(sort) = table.sort_key {
        keys.push(("RANGE", sort.to_owned()));
    }
    keys
}

fn cloudformation(table: &Table) -> String {
    let mut out = format!(
        "AWSTemplateFormatVersion: \"2010-09-09\"\nDescription: dynalease table {name}\nResources:\n  {id}:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      TableName: {name}\n      BillingMode: PAY_PER_REQUEST\n      AttributeDefinitions:\n",
        name = table.name,
        id = identifier(table.name),
    );
    for (_, name) in keys(table) {
        out.push_str(&format!("        - AttributeName: {name}\n          AttributeType: S\n"));
    }
    out.push_str("      KeySchema:\n");
    for (role, name) in keys(table) {
        out.push_str(&format!("        - AttributeName: {name}\n          KeyType: {role}\n"));
    }
    if table.ttl {
        out.push_str("      TimeToLiveSpecification:\n        AttributeName: expires\n        Enabled: true\n");
    }
    out.push_str(&format!("Outputs:\n  TableArn:\n    Value: !GetAtt {}.Arn\n", identifier(table.name)));
    out
}

fn terraform(table: &Table) -> String {
    let resource = identifier(table.name).to_lowercase();
    let mut out = format!(
        "resource \"aws_dynamodb_table\" \"{resource}\" {{\n  name         = \"{name}\"\n  billing_mode = \"PAY_PER_REQUEST\"\n  hash_key     = \"{pk}\"\n",
        name = table.name,
        pk = table.partition_key
    );
    if let Some(sort) = table.sort_key {
        out.push_str(&format!("  range_key    = \"{sort}\"\n"));
    }
    for (_, name) in keys(table) {
        out.push_str(&format!("\n  attribute {{\n    name = \"{name}\"\n    type = \"S\"\n  }}\n"));
    }
    if table.ttl {
        out.push_str("\n  ttl {\n    attribute_name = \"expires\"\n    enabled        = true\n  }\n");
    }
    out.push_str(&format!("}}\n\noutput \"{resource}_arn\" {{\n  value = aws_dynamodb_table.{resource}.arn\n}}\n"));
    out
}

fn cdk(table: &Table) -> String {
    let class = format!("{}Stack", identifier(table.name));
    let mut props = format!(
        "      tableName: \"{name}\",\n      partitionKey: {{ name: \"{pk}\", type: dynamodb.AttributeType.STRING }},\n",
        name = table.name,
        pk = table.partition_key
    );
    if let Some(sort) = table.sort_key {
        props.push_str(&format!("      sortKey: {{ name: \"{sort}\", type: dynamodb.AttributeType.STRING }},\n"));
    }
    props.push_str("      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,\n");
    if table.ttl {
        props.push_str("      timeToLiveAttribute: \"expires\",\n");
    }
    format!(
        "import {{ Stack, StackProps, CfnOutput }} from \"aws-cdk-lib\";\nimport * as dynamodb from \"aws-cdk-lib/aws-dynamodb\";\nimport {{ Construct }} from \"constructs\";\n\nexport class {class} extends Stack {{\n  constructor(scope: Construct, id: string, props?: StackProps) {{\n    super(scope, id, props);\n    const table = new dynamodb.Table(this, \"{id}\", {{\n{props}    }});\n    new CfnOutput(this, \"TableArn\", {{ value: table.tableArn }});\n  }}\n}}\n",
        id = identifier(table.name),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_letters_and_digits() {
        assert_eq!(identifier("my-locks.v2"), "MyLocksV2");
        assert_eq!(identifier("7up"), "Table7up");
    }
}
