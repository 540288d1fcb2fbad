//! Generates large, realistic Pack sources (and an equivalent YAML workflow) for the
//! front-end benchmark.
//!
//! A generated pack is one header (metadata, `use`s, inputs, models, knowledge, agents)
//! followed by `units` repetitions of three kinds of work, each with its own record type,
//! steps, a KPI and (every tenth unit) an eval:
//!
//! - support: mail search, a triage `map` of `ask`s with a multi-line prompt, labelling,
//!   ticket escalation with `where`, cited reply drafts, a `when`-guarded chat alert;
//! - sales: a CRM search, weighted pipeline arithmetic, web research with `concurrency`, a
//!   `review` loop around an `ask`, a document append;
//! - meetings: calendar events, per-meeting notes, CRM activity logging, a follow-up ticket.
//!
//! Steps reference earlier steps (inside a unit and across units of the same kind), so the
//! plan has real edges. Only stdlib tools are called, with their real parameter names. The
//! pack checks clean with `dsl_check::check` (the bench asserts it).
//!
//! The YAML workflow carries the same content (the same steps, prompts, types, comments)
//! as mappings and lists in the style of CI workflow files (`${{ expr }}` for expressions),
//! so that parsing it with `serde_yaml` is a fair "peer" figure.

/// A generated workload: a pack and the equivalent YAML workflow.
pub struct Workload {
    /// The `.gx` source.
    pub pack: String,
    /// The equivalent YAML workflow.
    pub yaml: String,
    /// How many units (of ~3 kinds) were generated.
    pub units: usize,
    /// How many flow steps the pack has.
    pub steps: usize,
}

/// Number of lines of a text.
pub fn line_count(text: &str) -> usize {
    text.lines().count()
}

/// A pack (and its YAML twin) of about `target_lines` lines (to within one unit).
pub fn workload(target_lines: usize) -> Workload {
    // Units come in three kinds of different sizes, and an eval every 30: estimate the
    // average size of a unit over 30 of them.
    let small = line_count(&build(30).pack);
    let large = line_count(&build(60).pack);
    let per_30 = large.saturating_sub(small).max(1);
    let fixed = small.saturating_sub(per_30);
    let units = (target_lines.saturating_sub(fixed) * 30)
        .div_ceil(per_30)
        .max(1);
    build(units)
}

const REGIONS: &[&str] = &[
    "emea", "apac", "amer", "latam", "nordics", "dach", "uk", "anz", "benelux", "iberia",
];

/// Expands a template: `@I` is the unit's index, `@R` its region, `@P` the index of the
/// previous unit of the same kind; lines mentioning `@P` are dropped for the first ones.
fn expand(template: &str, i: usize, out: &mut String) {
    let region = REGIONS[i % REGIONS.len()];
    let prev = i.checked_sub(3);
    let index = i.to_string();
    let prev_index = prev.map(|p| p.to_string()).unwrap_or_default();
    for line in template.lines() {
        if line.contains("@P") && prev.is_none() {
            continue;
        }
        let line = line
            .replace("@I", &index)
            .replace("@R", region)
            .replace("@P", &prev_index);
        out.push_str(&line);
        out.push('\n');
    }
}

fn build(units: usize) -> Workload {
    let mut pack = String::with_capacity(units * 3_000 + 8_000);
    let mut yaml = String::with_capacity(units * 3_600 + 8_000);
    pack.push_str(PACK_HEADER);
    yaml.push_str(YAML_HEADER);

    // Types: one record type per unit.
    yaml.push_str("\ntypes:\n");
    for i in 0..units {
        let (gx, yml) = match i % 3 {
            0 => (SUPPORT_TYPE_GX, SUPPORT_TYPE_YAML),
            1 => (SALES_TYPE_GX, SALES_TYPE_YAML),
            _ => (MEETING_TYPE_GX, MEETING_TYPE_YAML),
        };
        pack.push('\n');
        expand(gx, i, &mut pack);
        expand(yml, i, &mut yaml);
    }

    // The flow.
    pack.push_str("\n  flow {\n");
    yaml.push_str("\nsteps:\n");
    for i in 0..units {
        let (gx, yml) = match i % 3 {
            0 => (SUPPORT_FLOW_GX, SUPPORT_FLOW_YAML),
            1 => (SALES_FLOW_GX, SALES_FLOW_YAML),
            _ => (MEETING_FLOW_GX, MEETING_FLOW_YAML),
        };
        if i > 0 {
            pack.push('\n');
        }
        expand(gx, i, &mut pack);
        expand(yml, i, &mut yaml);
    }
    pack.push_str("  }\n");

    pack.push_str(PACK_POLICY);
    yaml.push_str(YAML_POLICY);

    // KPIs: one per unit.
    pack.push('\n');
    yaml.push_str("\nkpis:\n");
    for i in 0..units {
        let (gx, yml) = match i % 3 {
            0 => (SUPPORT_KPI_GX, SUPPORT_KPI_YAML),
            1 => (SALES_KPI_GX, SALES_KPI_YAML),
            _ => (MEETING_KPI_GX, MEETING_KPI_YAML),
        };
        expand(gx, i, &mut pack);
        expand(yml, i, &mut yaml);
    }

    // Evals: every tenth support unit.
    yaml.push_str("\nevals:\n");
    for i in (0..units).step_by(30) {
        pack.push('\n');
        expand(SUPPORT_EVAL_GX, i, &mut pack);
        expand(SUPPORT_EVAL_YAML, i, &mut yaml);
    }

    pack.push_str(PACK_LAYOUT);
    yaml.push_str(YAML_LAYOUT);
    pack.push_str("}\n");
    let steps = pack.matches("\n    step ").count();
    Workload {
        pack,
        yaml,
        units,
        steps,
    }
}

// ---------------------------------------------------------------------------------------
// The pack.

const PACK_HEADER: &str = r#"// Regional operations at scale: support triage, pipeline reviews and meeting follow-ups
// for every region and queue, in one pack.
//
// Each batch below is one region's queue. Support batches read unread mail, classify it,
// answer billing and how-to questions from the help centre and escalate outages; sales
// batches review the open pipeline with fresh news; meeting batches turn last week's
// customer meetings into CRM activities and follow-up tickets.
//
// Owner: Regional Ops (regional-ops@acme.example). Generated for the front-end benchmark.

pack regional_operations {
  title "Regional operations"
  version "2.4.0"
  description "Triage support mail, review pipelines and log customer meetings for every region."
  owner "regional-ops@acme.example"
  tags ["support", "sales", "meetings", "regional", "benchmark"]
  language "0.1"

  use std.mail
  use std.chat
  use std.tickets
  use std.crm
  use std.docs
  use std.web
  use std.calendar

  input {
    since: Duration = 24h
    max: Int = 25
    window: Duration = 7d
    escalation_channel: String = "support-escalations"
    kpi_log_doc: String = "doc_kpi_log_2025"
    // Above this many tense meetings in a week a region gets a follow-up ticket.
    urgent_ticket_limit: Int = 3
  }

  // Haiku for classification: cheap, fast, good enough. GPT-4.1 mini if Anthropic is down.
  model fast = anthropic("claude-haiku-4-5") {
    temperature: 0.1
    max_tokens: 600
    api_key: secret("ANTHROPIC_API_KEY")
    fallback: openai("gpt-4.1-mini")
    retry: 3
    backoff: 500ms
    timeout: 30s
    price: { input: 1.00 usd, output: 5.00 usd }
    sim_latency: 300ms
  }

  // Replies and reports are read by customers and leadership, so they get the bigger model.
  model writer = anthropic("claude-sonnet-4-5") {
    temperature: 0.4
    max_tokens: 1200
    api_key: secret("ANTHROPIC_API_KEY")
    fallback: [openai("gpt-4.1"), openai("gpt-4.1-mini")]
    retry: 2
    backoff: 1s
    timeout: 60s
    price: { input: 3.00 usd, output: 15.00 usd }
  }

  knowledge help_centre = files("knowledge/help/*.md")
  knowledge playbook = files("knowledge/playbook/*.md")

  agent triager {
    model: fast
    instructions: """
      You triage mail sent to Acme support. For each message decide:
      - category: billing, bug, outage, how_to, feature_request or spam;
      - urgency from 1 to 5 (5 only when a customer's production use is blocked);
      - a one-sentence summary a support engineer can act on.
      Copy the message id and the sender's address exactly as given. Be terse.
      """
  }

  agent responder {
    model: writer
    knowledge: [help_centre]
    instructions: """
      You write replies for Acme support. Friendly, short, no marketing language.
      Answer only from the help-centre articles you are given and cite them.
      Sign as "Acme Support".
      """
  }

  agent analyst {
    model: writer
    knowledge: [playbook]
    instructions: """
      You are the regional sales analyst. Write a short pipeline brief: a one-line headline,
      the deals at risk, the next steps. Use only the numbers you are given.
      """
  }

  agent editor {
    model: fast
    instructions: "Approve the brief only when every number matches the input. Score 0 to 1."
  }

  agent note_taker {
    model: fast
    knowledge: [playbook]
    instructions: "Summarise customer meetings: decisions, action items, overall sentiment."
  }
"#;

const SUPPORT_TYPE_GX: &str = r#"  /// What the triager decides about one message of the @R queue (batch @I).
  type Triage@I {
    message_id: String
    reply_to: String
    subject: String
    category: "billing" | "bug" | "outage" | "how_to" | "feature_request" | "spam"
    urgency: Int // 1 = can wait a week, 5 = production is down
    summary: String
    customer: String?
  }"#;

const SALES_TYPE_GX: &str = r#"  /// The analyst's brief on the @R pipeline (batch @I).
  type DealBrief@I {
    headline: String
    at_risk: [String]
    next_steps: [String]
    confidence: Float
    markdown: String
  }"#;

const MEETING_TYPE_GX: &str = r#"  /// Notes of one @R customer meeting (batch @I).
  type Meeting@I {
    title: String
    date: String
    attendees: [String]
    recap: String
    decisions: [String]
    action_items: [String]
    sentiment: "positive" | "neutral" | "negative"
  }"#;

const SUPPORT_FLOW_GX: &str = r#"    // ---- Batch @I: the @R support queue ------------------------------------------
    // Unread mail for @R is triaged, labelled, escalated when urgent and answered with a
    // cited draft when it is a billing or how-to question.
    step inbox_@I = mail.search(query: "is:unread in:inbox label:@R-queue", since: input.since, limit: input.max)

    step triage_@I = map msg in inbox_@I.messages where msg.unread concurrency 5 {
      ask triager -> Triage@I {
        prompt: """
          Queue: @R (batch @I)
          Message id: {msg.id}
          From: {msg.from.name}
          Subject: {msg.subject}
          Received: {msg.received_at}

          {msg.body}
          """
      }
    }

    // Everything we looked at gets a label, so the next run and the humans skip it.
    step labelled_@I = map t in triage_@I concurrency 5 {
      mail.label(id: t.message_id, add: ["triaged", "@R", t.category], remove: ["UNREAD"])
    }

    step escalations_@I = map t in triage_@I where t.category == "bug" or t.category == "outage" or t.urgency >= 4 {
      tickets.create(project: "SUP", title: t.subject, description: t.summary, priority: "urgent", labels: ["from-inbox", "@R", t.category])
    }

    step drafts_@I = map t in triage_@I where t.category == "billing" or t.category == "how_to" concurrency 3 {
      ask responder -> mail.Draft {
        prompt: """
          Write a reply to {t.reply_to} (message {t.message_id}, subject "{t.subject}").
          Their request: {t.summary}
          Set in_reply_to to the message id and keep the subject with a "Re:" prefix.
          """
        cite: help_centre
      }
    }

    // Drafts only: a person reads each one and presses send in the mail client.
    step saved_@I = map d in drafts_@I {
      mail.create_draft(to: d.to, subject: d.subject, body: d.body, in_reply_to: d.in_reply_to)
    }

    step escalation_lines_@I = map e in escalations_@I {
      "- {e.key} {e.title} ({e.url})"
    }

    step escalation_text_@I = join(escalation_lines_@I, "\n")

    step alert_@I = when count(escalations_@I) > 0 {
      chat.post(channel: input.escalation_channel, text: """
        @R queue: {count(escalations_@I)} urgent ticket(s) need an owner.
        Batch @P of this queue filed {count(escalations_@P)}.
        {escalation_text_@I}
        """)
    }"#;

const SALES_FLOW_GX: &str = r#"    // ---- Batch @I: the @R pipeline review ----------------------------------------
    step deals_@I = crm.search_deals(owner: "@R-sales", closing_within: 90d, limit: 200)

    step weighted_@I = map d in deals_@I.deals where d.probability >= 0.2 {
      d.amount * d.probability
    }

    step pipeline_@I = sum(weighted_@I)

    // Late-stage deals get a news check: funding, layoffs and acquisitions change the odds.
    step research_@I = map d in deals_@I.deals where d.stage == "proposal" or d.stage == "negotiation" concurrency 3 {
      web.search(query: "{d.name} funding OR layoffs OR acquisition", limit: 3, recency: 30d)
    }

    step brief_@I = review by editor until critique.approved and critique.score >= 0.75 max 2 {
      ask analyst -> DealBrief@I {
        prompt: """
          Region: @R. Weighted pipeline: {pipeline_@I} across {count(deals_@I.deals)} open deals.
          News searches run: {count(research_@I)}.
          Previous brief on this region: {brief_@P.headline}
          Editor feedback on the previous draft, if any: {critique.feedback}
          """
        cite: playbook
      }
    }

    step logged_@I = docs.append(id: input.kpi_log_doc, content: brief_@I.markdown)"#;

const MEETING_FLOW_GX: &str = r#"    // ---- Batch @I: @R customer meetings ------------------------------------------
    step events_@I = calendar.list_events(calendar: "@R-accounts", window: input.window, query: "customer")

    step notes_@I = map ev in events_@I.events where ev.status == "confirmed" concurrency 2 {
      ask note_taker -> Meeting@I {
        prompt: """
          Meeting: {ev.title} ({ev.start} to {ev.end})
          Organizer: {ev.organizer.name}, {count(ev.attendees)} attendees

          {ev.description}
          """
        cite: playbook
      }
    }

    step tense_@I = map m in notes_@I where m.sentiment == "negative" {
      m.title
    }

    step activities_@I = map m in notes_@I concurrency 4 {
      crm.log_activity(kind: "meeting", subject: m.title, body: m.recap)
    }

    step followup_@I = when count(tense_@I) > input.urgent_ticket_limit {
      tickets.create(project: "CSM", title: "@R: {count(tense_@I)} tense customer meetings", description: "Meetings: {tense_@I}", priority: "high")
    }"#;

const PACK_POLICY: &str = r#"
  policy {
    approve destructive
    // The escalation channel is internal; paging it must never wait for a person.
    auto approve chat.post when channel == input.escalation_channel
    egress allow ["api.mail.example.com", "api.chat.example.com", "api.tickets.example.com", "api.crm.example.com", "api.docs.example.com", "api.search.example.com", "api.calendar.example.com", "api.anthropic.com", "api.openai.com"]
    redact cards before all
    redact phones before model
    budget 25.00 usd per run
    budget 5000000 tokens per run
    budget 2h time per run
    rate mail.label 600 per 1m
    rate tickets.create 100 per 1h
  }

  outcome success when count(triage_0) == count(inbox_0.messages)
"#;

const SUPPORT_KPI_GX: &str = "  kpi escalations_@I = count(escalations_@I) target <= 5";
const SALES_KPI_GX: &str = "  kpi pipeline_@I = pipeline_@I target >= 100000 usd";
const MEETING_KPI_GX: &str = "  kpi tense_meetings_@I = count(tense_@I) target <= 2";

const SUPPORT_EVAL_GX: &str = r#"  eval "batch @I: an outage is escalated and nothing is drafted" {
    mock mail.search returns file("fixtures/outage_inbox.json")
    mock triager returns {
      message_id: "msg_@I"
      reply_to: "tom.becker@litware.example"
      subject: "URGENT: API returning 401 for all our service accounts"
      category: "outage"
      urgency: 5
      summary: "All service-account API calls return 401 since 06:10 UTC; production integrations down."
      customer: "Litware"
    }
    approve all
    expect count(escalations_@I) == 1
    expect count(drafts_@I) == 0
    expect alert_@I != none
  }"#;

const PACK_LAYOUT: &str = r#"
  layout {
    inbox_0: (0, 120)
    triage_0: (240, 120)
    labelled_0: (480, 0)
    escalations_0: (480, 360)
    drafts_0: (480, 240)
    saved_0: (720, 240)
    escalation_lines_0: (720, 360)
    escalation_text_0: (960, 360)
    alert_0: (1200, 360)
  }
"#;

// ---------------------------------------------------------------------------------------
// The YAML twin.

const YAML_HEADER: &str = r#"# Regional operations at scale: support triage, pipeline reviews and meeting follow-ups
# for every region and queue, in one workflow.
#
# Each batch below is one region's queue. Support batches read unread mail, classify it,
# answer billing and how-to questions from the help centre and escalate outages; sales
# batches review the open pipeline with fresh news; meeting batches turn last week's
# customer meetings into CRM activities and follow-up tickets.
#
# Owner: Regional Ops (regional-ops@acme.example). Generated for the front-end benchmark.

name: regional_operations
title: Regional operations
version: "2.4.0"
description: Triage support mail, review pipelines and log customer meetings for every region.
owner: regional-ops@acme.example
tags: [support, sales, meetings, regional, benchmark]
language: "0.1"

uses:
  - std.mail
  - std.chat
  - std.tickets
  - std.crm
  - std.docs
  - std.web
  - std.calendar

inputs:
  since: { type: Duration, default: 24h }
  max: { type: Int, default: 25 }
  window: { type: Duration, default: 7d }
  escalation_channel: { type: String, default: support-escalations }
  kpi_log_doc: { type: String, default: doc_kpi_log_2025 }
  # Above this many tense meetings in a week a region gets a follow-up ticket.
  urgent_ticket_limit: { type: Int, default: 3 }

models:
  # Haiku for classification: cheap, fast, good enough. GPT-4.1 mini if Anthropic is down.
  fast:
    provider: anthropic
    model: claude-haiku-4-5
    temperature: 0.1
    max_tokens: 600
    api_key: { secret: ANTHROPIC_API_KEY }
    fallback:
      - { provider: openai, model: gpt-4.1-mini }
    retry: 3
    backoff: 500ms
    timeout: 30s
    price: { input: 1.00 usd, output: 5.00 usd }
    sim_latency: 300ms
  # Replies and reports are read by customers and leadership, so they get the bigger model.
  writer:
    provider: anthropic
    model: claude-sonnet-4-5
    temperature: 0.4
    max_tokens: 1200
    api_key: { secret: ANTHROPIC_API_KEY }
    fallback:
      - { provider: openai, model: gpt-4.1 }
      - { provider: openai, model: gpt-4.1-mini }
    retry: 2
    backoff: 1s
    timeout: 60s
    price: { input: 3.00 usd, output: 15.00 usd }

knowledge:
  help_centre: { files: "knowledge/help/*.md" }
  playbook: { files: "knowledge/playbook/*.md" }

agents:
  triager:
    model: fast
    instructions: |
      You triage mail sent to Acme support. For each message decide:
      - category: billing, bug, outage, how_to, feature_request or spam;
      - urgency from 1 to 5 (5 only when a customer's production use is blocked);
      - a one-sentence summary a support engineer can act on.
      Copy the message id and the sender's address exactly as given. Be terse.
  responder:
    model: writer
    knowledge: [help_centre]
    instructions: |
      You write replies for Acme support. Friendly, short, no marketing language.
      Answer only from the help-centre articles you are given and cite them.
      Sign as "Acme Support".
  analyst:
    model: writer
    knowledge: [playbook]
    instructions: |
      You are the regional sales analyst. Write a short pipeline brief: a one-line headline,
      the deals at risk, the next steps. Use only the numbers you are given.
  editor:
    model: fast
    instructions: Approve the brief only when every number matches the input. Score 0 to 1.
  note_taker:
    model: fast
    knowledge: [playbook]
    instructions: "Summarise customer meetings: decisions, action items, overall sentiment."
"#;

const SUPPORT_TYPE_YAML: &str = r#"  # What the triager decides about one message of the @R queue (batch @I).
  Triage@I:
    message_id: String
    reply_to: String
    subject: String
    category: { enum: [billing, bug, outage, how_to, feature_request, spam] }
    urgency: Int # 1 = can wait a week, 5 = production is down
    summary: String
    customer: String?
"#;

const SALES_TYPE_YAML: &str = r#"  # The analyst's brief on the @R pipeline (batch @I).
  DealBrief@I:
    headline: String
    at_risk: "[String]"
    next_steps: "[String]"
    confidence: Float
    markdown: String
"#;

const MEETING_TYPE_YAML: &str = r#"  # Notes of one @R customer meeting (batch @I).
  Meeting@I:
    title: String
    date: String
    attendees: "[String]"
    recap: String
    decisions: "[String]"
    action_items: "[String]"
    sentiment: { enum: [positive, neutral, negative] }
"#;

const SUPPORT_FLOW_YAML: &str = r#"  # ---- Batch @I: the @R support queue ------------------------------------------
  # Unread mail for @R is triaged, labelled, escalated when urgent and answered with a
  # cited draft when it is a billing or how-to question.
  - id: inbox_@I
    tool: mail.search
    with:
      query: "is:unread in:inbox label:@R-queue"
      since: ${{ inputs.since }}
      limit: ${{ inputs.max }}

  - id: triage_@I
    map:
      over: ${{ steps.inbox_@I.messages }}
      as: msg
      where: ${{ msg.unread }}
      concurrency: 5
      do:
        ask: triager
        output: Triage@I
        prompt: |
          Queue: @R (batch @I)
          Message id: ${{ msg.id }}
          From: ${{ msg.from.name }}
          Subject: ${{ msg.subject }}
          Received: ${{ msg.received_at }}

          ${{ msg.body }}

  # Everything we looked at gets a label, so the next run and the humans skip it.
  - id: labelled_@I
    map:
      over: ${{ steps.triage_@I }}
      as: t
      concurrency: 5
      do:
        tool: mail.label
        with:
          id: ${{ t.message_id }}
          add: ["triaged", "@R", "${{ t.category }}"]
          remove: ["UNREAD"]

  - id: escalations_@I
    map:
      over: ${{ steps.triage_@I }}
      as: t
      where: ${{ t.category == 'bug' || t.category == 'outage' || t.urgency >= 4 }}
      do:
        tool: tickets.create
        with:
          project: SUP
          title: ${{ t.subject }}
          description: ${{ t.summary }}
          priority: urgent
          labels: ["from-inbox", "@R", "${{ t.category }}"]

  - id: drafts_@I
    map:
      over: ${{ steps.triage_@I }}
      as: t
      where: ${{ t.category == 'billing' || t.category == 'how_to' }}
      concurrency: 3
      do:
        ask: responder
        output: mail.Draft
        prompt: |
          Write a reply to ${{ t.reply_to }} (message ${{ t.message_id }}, subject "${{ t.subject }}").
          Their request: ${{ t.summary }}
          Set in_reply_to to the message id and keep the subject with a "Re:" prefix.
        cite: help_centre

  # Drafts only: a person reads each one and presses send in the mail client.
  - id: saved_@I
    map:
      over: ${{ steps.drafts_@I }}
      as: d
      do:
        tool: mail.create_draft
        with:
          to: ${{ d.to }}
          subject: ${{ d.subject }}
          body: ${{ d.body }}
          in_reply_to: ${{ d.in_reply_to }}

  - id: escalation_lines_@I
    map:
      over: ${{ steps.escalations_@I }}
      as: e
      do:
        value: "- ${{ e.key }} ${{ e.title }} (${{ e.url }})"

  - id: escalation_text_@I
    value: ${{ join(steps.escalation_lines_@I, '\n') }}

  - id: alert_@I
    if: ${{ count(steps.escalations_@I) > 0 }}
    tool: chat.post
    with:
      channel: ${{ inputs.escalation_channel }}
      text: |
        @R queue: ${{ count(steps.escalations_@I) }} urgent ticket(s) need an owner.
        Batch @P of this queue filed ${{ count(steps.escalations_@P) }}.
        ${{ steps.escalation_text_@I }}
"#;

const SALES_FLOW_YAML: &str = r#"  # ---- Batch @I: the @R pipeline review ----------------------------------------
  - id: deals_@I
    tool: crm.search_deals
    with:
      owner: "@R-sales"
      closing_within: 90d
      limit: 200

  - id: weighted_@I
    map:
      over: ${{ steps.deals_@I.deals }}
      as: d
      where: ${{ d.probability >= 0.2 }}
      do:
        value: ${{ d.amount * d.probability }}

  - id: pipeline_@I
    value: ${{ sum(steps.weighted_@I) }}

  # Late-stage deals get a news check: funding, layoffs and acquisitions change the odds.
  - id: research_@I
    map:
      over: ${{ steps.deals_@I.deals }}
      as: d
      where: ${{ d.stage == 'proposal' || d.stage == 'negotiation' }}
      concurrency: 3
      do:
        tool: web.search
        with:
          query: "${{ d.name }} funding OR layoffs OR acquisition"
          limit: 3
          recency: 30d

  - id: brief_@I
    review:
      by: editor
      until: ${{ critique.approved && critique.score >= 0.75 }}
      max: 2
      do:
        ask: analyst
        output: DealBrief@I
        prompt: |
          Region: @R. Weighted pipeline: ${{ steps.pipeline_@I }} across ${{ count(steps.deals_@I.deals) }} open deals.
          News searches run: ${{ count(steps.research_@I) }}.
          Previous brief on this region: ${{ steps.brief_@P.headline }}
          Editor feedback on the previous draft, if any: ${{ critique.feedback }}
        cite: playbook

  - id: logged_@I
    tool: docs.append
    with:
      id: ${{ inputs.kpi_log_doc }}
      content: ${{ steps.brief_@I.markdown }}
"#;

const MEETING_FLOW_YAML: &str = r#"  # ---- Batch @I: @R customer meetings ------------------------------------------
  - id: events_@I
    tool: calendar.list_events
    with:
      calendar: "@R-accounts"
      window: ${{ inputs.window }}
      query: customer

  - id: notes_@I
    map:
      over: ${{ steps.events_@I.events }}
      as: ev
      where: ${{ ev.status == 'confirmed' }}
      concurrency: 2
      do:
        ask: note_taker
        output: Meeting@I
        prompt: |
          Meeting: ${{ ev.title }} (${{ ev.start }} to ${{ ev.end }})
          Organizer: ${{ ev.organizer.name }}, ${{ count(ev.attendees) }} attendees

          ${{ ev.description }}
        cite: playbook

  - id: tense_@I
    map:
      over: ${{ steps.notes_@I }}
      as: m
      where: ${{ m.sentiment == 'negative' }}
      do:
        value: ${{ m.title }}

  - id: activities_@I
    map:
      over: ${{ steps.notes_@I }}
      as: m
      concurrency: 4
      do:
        tool: crm.log_activity
        with:
          kind: meeting
          subject: ${{ m.title }}
          body: ${{ m.recap }}

  - id: followup_@I
    if: ${{ count(steps.tense_@I) > inputs.urgent_ticket_limit }}
    tool: tickets.create
    with:
      project: CSM
      title: "@R: ${{ count(steps.tense_@I) }} tense customer meetings"
      description: "Meetings: ${{ steps.tense_@I }}"
      priority: high
"#;

const YAML_POLICY: &str = r#"
policy:
  approve: [destructive]
  auto_approve:
    # The escalation channel is internal; paging it must never wait for a person.
    - tool: chat.post
      when: ${{ channel == inputs.escalation_channel }}
  egress_allow:
    - api.mail.example.com
    - api.chat.example.com
    - api.tickets.example.com
    - api.crm.example.com
    - api.docs.example.com
    - api.search.example.com
    - api.calendar.example.com
    - api.anthropic.com
    - api.openai.com
  redact:
    - { what: cards, before: all }
    - { what: phones, before: model }
  budget:
    - { amount: 25.00 usd, per: run }
    - { amount: 5000000, unit: tokens, per: run }
    - { amount: 2h, unit: time, per: run }
  rate:
    - { tool: mail.label, count: 600, per: 1m }
    - { tool: tickets.create, count: 100, per: 1h }

outcome:
  success_when: ${{ count(steps.triage_0) == count(steps.inbox_0.messages) }}
"#;

const SUPPORT_KPI_YAML: &str =
    r#"  escalations_@I: { value: "${{ count(steps.escalations_@I) }}", target: "<= 5" }"#;
const SALES_KPI_YAML: &str =
    r#"  pipeline_@I: { value: "${{ steps.pipeline_@I }}", target: ">= 100000 usd" }"#;
const MEETING_KPI_YAML: &str =
    r#"  tense_meetings_@I: { value: "${{ count(steps.tense_@I) }}", target: "<= 2" }"#;

const SUPPORT_EVAL_YAML: &str = r#"  - name: "batch @I: an outage is escalated and nothing is drafted"
    mocks:
      mail.search: { file: fixtures/outage_inbox.json }
      triager:
        message_id: msg_@I
        reply_to: tom.becker@litware.example
        subject: "URGENT: API returning 401 for all our service accounts"
        category: outage
        urgency: 5
        summary: "All service-account API calls return 401 since 06:10 UTC; production integrations down."
        customer: Litware
    approve: all
    expect:
      - ${{ count(steps.escalations_@I) == 1 }}
      - ${{ count(steps.drafts_@I) == 0 }}
      - ${{ steps.alert_@I != null }}
"#;

const YAML_LAYOUT: &str = r#"
layout:
  inbox_0: [0, 120]
  triage_0: [240, 120]
  labelled_0: [480, 0]
  escalations_0: [480, 360]
  drafts_0: [480, 240]
  saved_0: [720, 240]
  escalation_lines_0: [720, 360]
  escalation_text_0: [960, 360]
  alert_0: [1200, 360]
"#;

// ---------------------------------------------------------------------------------------
// Probes for super-linear behaviour.

/// A pack of `errors` broken steps: a third syntax errors, a third misspelled step names (a
/// did-you-mean search over every step), a third argument type mismatches.
pub fn broken_pack(errors: usize) -> String {
    let mut out = String::with_capacity(errors * 90 + 512);
    out.push_str("// A pack full of mistakes, to probe error recovery.\npack broken {\n  language \"0.1\"\n  use std.mail\n\n  flow {\n");
    for i in 0..errors {
        match i % 3 {
            // A missing argument value: a syntax error; recovery skips to the next step.
            0 => out.push_str(&format!(
                "    step s_{i} = mail.search(query: , limit: 5)\n"
            )),
            // A misspelled reference to an earlier step.
            1 => out.push_str(&format!("    step s_{i} = count(sx_{}.messages)\n", i - 1)),
            // A type mismatch on a named argument.
            _ => out.push_str(&format!(
                "    step s_{i} = mail.search(query: {i}, limit: \"many\")\n"
            )),
        }
    }
    out.push_str("  }\n}\n");
    out
}

/// A pack whose one step nests `depth` levels deep with the given open/close brackets
/// around `inner`.
pub fn nested_pack(depth: usize, open: &str, close: &str, inner: &str) -> String {
    let mut out = String::with_capacity(depth * (open.len() + close.len()) + 256);
    out.push_str("pack nested {\n  language \"0.1\"\n  flow {\n    step deep = ");
    for _ in 0..depth {
        out.push_str(open);
    }
    out.push_str(inner);
    for _ in 0..depth {
        out.push_str(close);
    }
    out.push_str("\n  }\n}\n");
    out
}

/// A pack whose input block declares one type nested `depth` levels deep (`[[[...Int...]]]`).
pub fn nested_input_pack(depth: usize) -> String {
    let mut out = String::with_capacity(depth * 2 + 256);
    out.push_str("pack nested_input {\n  language \"0.1\"\n  input {\n    deep: ");
    out.push_str(&"[".repeat(depth));
    out.push_str("Int");
    out.push_str(&"]".repeat(depth));
    out.push_str("\n  }\n  flow {\n    step x = input.deep\n  }\n}\n");
    out
}
