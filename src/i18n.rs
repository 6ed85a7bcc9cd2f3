//! The one message catalogue for what people read: the web portal, the HTML compliance report
//! and the command line's own messages. Simplified Chinese first (the users are Chinese units,
//! bureaus and prosecutors), English as the fallback; a key missing from the table is shown as
//! itself, so that a missing message is visible rather than blank.

/// A language a reader can choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    /// `en…` is English; anything else (including nothing) is Chinese.
    pub fn parse(text: &str) -> Lang {
        if text.trim().to_ascii_lowercase().starts_with("en") {
            Lang::En
        } else {
            Lang::Zh
        }
    }

    /// The language of the process's locale (`LC_ALL`, `LC_MESSAGES`, `LANG`, as POSIX
    /// orders them): Chinese for `zh_*`, English for anything else or nothing.
    pub fn from_env() -> Lang {
        let locale = ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|var| std::env::var(var).ok())
            .find(|value| !value.is_empty())
            .unwrap_or_default();
        Self::of_locale(&locale)
    }

    /// `zh_CN.UTF-8`, `zh_TW`, `zh` are Chinese; anything else is English.
    pub fn of_locale(locale: &str) -> Lang {
        if locale.to_ascii_lowercase().starts_with("zh") {
            Lang::Zh
        } else {
            Lang::En
        }
    }

    /// The code for `lang=` attributes and links.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The other language, for the switch on every page.
    pub fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }

    /// The message `key` in this language, when the catalogue has it.
    pub fn lookup(self, key: &str) -> Option<&'static str> {
        MESSAGES
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, zh, en)| match self {
                Lang::Zh => *zh,
                Lang::En => *en,
            })
    }

    /// The message `key` in this language, or the key itself when it is missing.
    pub fn t(self, key: &str) -> &str {
        self.lookup(key).unwrap_or(key)
    }

    /// The message `key` with each `{}` replaced by the next of `args`, in order: the
    /// catalogue's sentences carry their figures where each language puts them.
    pub fn f(self, key: &str, args: &[&dyn std::fmt::Display]) -> String {
        let mut out = String::new();
        let mut args = args.iter();
        let mut pieces = self.t(key).split("{}");
        if let Some(first) = pieces.next() {
            out.push_str(first);
        }
        for piece in pieces {
            if let Some(arg) = args.next() {
                out.push_str(&arg.to_string());
            }
            out.push_str(piece);
        }
        out
    }
}

/// `text` padded with spaces to `columns` terminal columns, a Chinese character taking two,
/// so that labelled lines stay aligned in either language.
pub fn pad(text: &str, columns: usize) -> String {
    let used: usize = text.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum();
    format!("{text}{}", " ".repeat(columns.saturating_sub(used)))
}

/// (key, 简体中文, English).
const MESSAGES: &[(&str, &str, &str)] = &[
    ("lang.name", "简体中文", "English"),
    ("lang.switch", "English", "简体中文"),
    (
        "app.title",
        "从业人员准入查询平台",
        "Staff background check portal",
    ),
    (
        "app.lede",
        "密切接触未成年人单位从业人员性侵害、虐待、拐卖、暴力伤害等违法犯罪信息查询",
        "Checks of staff who work with children for sexual-offence, abuse, trafficking and violent-injury records",
    ),
    ("nav.home", "首页", "Home"),
    ("nav.check", "入职查询", "Pre-hire check"),
    ("nav.staff", "批量查询与名单", "Staff file"),
    (
        "nav.roster",
        "在职名单与年度复查",
        "Roster and yearly re-check",
    ),
    ("nav.alerts", "预警", "Alerts"),
    ("nav.reviews", "复查与异议", "Reviews and disputes"),
    ("nav.oversight", "合规情况", "Compliance"),
    ("nav.audit", "审计记录", "Audit trail"),
    ("home.signed_in", "当前单位", "Signed in as"),
    ("home.role", "角色", "Role"),
    ("home.region", "行政区划", "Region"),
    (
        "home.not_enrolled",
        "此证书所属单位尚未登记，请联系主管部门。",
        "The organisation named by this certificate is not enrolled; ask your supervising bureau.",
    ),
    (
        "home.no_pages",
        "此角色在门户中没有页面，请使用命令行工具。",
        "This role has no portal pages; use the command-line client.",
    ),
    ("role.EMPLOYER", "用人单位", "Employer"),
    ("role.BUREAU", "教育行政部门", "Education bureau"),
    ("role.PROSECUTOR", "检察机关", "Prosecutor"),
    ("role.REGISTRAR", "登记机关", "Registrar"),
    ("role.OPERATOR", "运维管理员", "Operator"),
    (
        "nocert.title",
        "需要单位数字证书",
        "An organisation certificate is required",
    ),
    (
        "nocert.body",
        "本平台只接受已登记单位的数字证书登录。您的浏览器没有出示证书，因此无法显示任何内容。",
        "This portal only admits enrolled organisations by their client certificate. Your browser presented none, so nothing can be shown.",
    ),
    (
        "nocert.step1",
        "向主管教育行政部门或平台运维管理员申请本单位的证书文件（.p12），并索取其口令。",
        "Ask your supervising education bureau or the portal's operator for your organisation's certificate file (.p12) and its password.",
    ),
    (
        "nocert.step2",
        "在浏览器中导入证书：设置 → 隐私和安全 → 安全 → 管理证书 → 您的证书 → 导入，选择 .p12 文件并输入口令。",
        "Import it into the browser: Settings → Privacy and security → Security → Manage certificates → Your certificates → Import, choose the .p12 file and enter its password.",
    ),
    (
        "nocert.step3",
        "关闭并重新打开浏览器，再次访问本页面，在提示时选择本单位的证书。",
        "Close and reopen the browser, open this page again and choose your organisation's certificate when asked.",
    ),
    (
        "nocert.operator",
        "运维管理员签发证书：safehire certs issue --uscc <统一社会信用代码> --p12 <文件> --p12-password-file <口令文件>",
        "Operators issue one with: safehire certs issue --uscc <USCC> --p12 <file> --p12-password-file <password file>",
    ),
    ("form.doc_type", "证件类型", "Document type"),
    ("form.doc_number", "证件号码", "Document number"),
    ("form.name", "姓名", "Name"),
    ("form.consent_ref", "授权同意书编号", "Consent reference"),
    (
        "form.consent_hint",
        "本单位持有被查询人签署的授权同意书的编号，例如 CONSENT-2026-001。",
        "Your reference to the applicant's signed authorisation, e.g. CONSENT-2026-001.",
    ),
    ("form.scope", "查询范围", "Scope"),
    (
        "scope.ART62",
        "未成年人保护法第六十二条（全部类别）",
        "Minors Protection Law art. 62 (every category)",
    ),
    (
        "scope.SEXUAL",
        "性侵害违法犯罪（教职员工准入）",
        "Sexual offences (teaching staff)",
    ),
    (
        "form.on_behalf_of",
        "代查单位统一社会信用代码",
        "USCC of the unit checked for",
    ),
    ("form.submit_check", "查询", "Check"),
    (
        "form.file",
        "人员名单文件（CSV 或 .xlsx）",
        "Staff file (CSV or .xlsx)",
    ),
    (
        "form.file_hint",
        "表头可用中文或英文：证件类型,证件号码,姓名,工号（可选：入职日期,离职日期,同意书编号）。CSV 可为 UTF-8、带 BOM 的 UTF-8 或 GB18030。",
        "Headers in Chinese or English: doc_type,doc_number,name,staff_ref (optional hire_date, departure_date, consent_ref). CSV in UTF-8, UTF-8 with BOM or GB18030.",
    ),
    ("form.mode", "用途", "Use"),
    (
        "mode.pre_hire",
        "入职前批量查询",
        "Pre-hire checks of every row",
    ),
    (
        "mode.roster",
        "申报在职名单（整体替换）",
        "Declare the current staff (full replacement)",
    ),
    ("form.upload", "上传", "Upload"),
    ("form.download", "下载结果文件", "Download the results file"),
    (
        "form.recheck",
        "一键复查全部在职人员",
        "Re-check every current member",
    ),
    ("form.ack", "确认", "Acknowledge"),
    (
        "form.note",
        "备注（不得填写身份信息）",
        "Note (no identities)",
    ),
    ("form.dispute", "提出异议", "Dispute"),
    ("form.check_id", "查询编号", "Check id"),
    ("form.search", "查询", "Search"),
    ("form.filter", "筛选", "Filter"),
    ("form.all", "全部", "All"),
    ("result.title", "查询结果", "Result"),
    ("result.receipt", "回执（查询编号）", "Receipt (check id)"),
    ("result.checked_at", "查询时间", "Checked at"),
    ("result.registry_version", "数据版本", "Registry version"),
    ("result.review_id", "复查编号", "Review id"),
    (
        "result.as_of_note",
        "查询结果仅反映查询时数据库中的信息。",
        "The answer reflects only what the registry held at the time of the check.",
    ),
    ("outcome.NO_RECORD", "未发现相关违法犯罪记录", "No record"),
    (
        "outcome.RECORD_FOUND",
        "发现相关违法犯罪记录，不得录用",
        "Record found: may not be hired",
    ),
    (
        "outcome.NEEDS_REVIEW",
        "需复查，录用前请等待登记机关处理",
        "Needs review: hold the hire until a registrar resolves it",
    ),
    ("outcome.UNSPECIFIED", "未知", "Unknown"),
    ("error.refused", "请求未被受理", "The request was refused"),
    (
        "error.csrf",
        "表单已失效，请返回重新提交。",
        "The form has expired; go back and submit it again.",
    ),
    (
        "error.bad_form",
        "表单内容不完整。",
        "The form is incomplete.",
    ),
    (
        "error.no_results",
        "没有该批次的结果文件（可能已过期）。",
        "No results file for that batch (it may have expired).",
    ),
    ("staff.summary", "处理结果", "Summary"),
    ("staff.rows", "行数", "Rows"),
    ("staff.errors", "错误", "Errors"),
    ("staff.progress", "已处理", "Processed"),
    ("roster.declared", "已申报名单", "Staff declared"),
    (
        "roster.not_declared",
        "尚未申报在职名单。",
        "No staff declared yet.",
    ),
    ("roster.current", "在职人数", "Current members"),
    ("roster.due", "需年度复查", "Due for the yearly re-check"),
    (
        "roster.interval",
        "复查周期（天）",
        "Re-check interval (days)",
    ),
    ("roster.last_checked", "上次查询", "Last checked"),
    ("roster.never", "从未查询", "never"),
    ("roster.hire_date", "入职日期", "Hire date"),
    ("roster.staff_ref", "工号", "Staff ref"),
    ("roster.recheck_done", "复查完成", "Re-check done"),
    ("alerts.none", "没有预警。", "No alerts."),
    ("alerts.id", "编号", "Id"),
    ("alerts.created", "产生时间", "Raised at"),
    ("alerts.action", "处理", "Action"),
    ("alerts.open", "待处理", "open"),
    ("action.DISMISSED", "已核实，无需处理", "Dismissed"),
    (
        "action.SUSPENDED_PENDING_REVIEW",
        "已暂停其工作，等待复查",
        "Suspended pending review",
    ),
    ("action.DISPUTED", "提出异议", "Disputed"),
    ("action.NOT_OUR_STAFF", "非本单位人员", "Not our staff"),
    ("reviews.none", "没有复查案件。", "No review cases."),
    ("reviews.reason", "原因", "Reason"),
    ("reviews.opened", "开启时间", "Opened"),
    ("reviews.resolution", "结论", "Resolution"),
    (
        "reason.NEEDS_REVIEW",
        "证件与姓名不一致",
        "Document matched, name did not",
    ),
    ("reason.DISPUTED", "单位异议", "Disputed by the unit"),
    ("resolution.UNSPECIFIED", "处理中", "open"),
    ("resolution.CONFIRMED", "记录属实", "Confirmed"),
    ("resolution.CLEARED", "记录不属于此人", "Cleared"),
    (
        "resolution.IDENTITY_CORRECTED",
        "身份信息已更正",
        "Identity corrected",
    ),
    ("oversight.units", "单位数", "Units"),
    ("oversight.flagged", "存在问题的单位", "Units with findings"),
    (
        "oversight.checked_share",
        "按时查询的在职人员",
        "Staff checked in time",
    ),
    ("oversight.by_kind", "问题类型", "Findings by kind"),
    ("oversight.unit", "单位", "Unit"),
    ("oversight.uscc", "统一社会信用代码", "USCC"),
    ("oversight.region", "行政区划", "Region"),
    ("oversight.bureau", "主管部门", "Supervising bureau"),
    ("oversight.findings", "问题", "Findings"),
    ("oversight.checks", "查询次数", "Checks"),
    ("oversight.evidence", "证据", "Evidence"),
    ("oversight.as_of", "截至", "As of"),
    ("oversight.audit_head", "审计日志位置", "Audit head"),
    ("oversight.sort", "排序", "Sort"),
    (
        "oversight.no_units",
        "没有符合条件的单位。",
        "No unit matches.",
    ),
    ("audit.verify", "日志校验", "Log verification"),
    (
        "audit.ok",
        "审计日志完整，校验通过",
        "The audit log verifies",
    ),
    (
        "audit.broken",
        "审计日志校验失败",
        "The audit log does not verify",
    ),
    ("audit.entries_checked", "已校验条目", "Entries checked"),
    (
        "audit.who_checked",
        "查询某人被哪些单位查询过",
        "Who checked a person",
    ),
    ("audit.recent", "最近的审计记录", "Recent audit entries"),
    ("audit.seq", "序号", "Seq"),
    ("audit.at", "时间", "At"),
    ("audit.caller", "调用方", "Caller"),
    ("audit.action", "操作", "Action"),
    ("audit.employer", "用人单位", "Employer"),
    ("audit.purpose", "目的", "Purpose"),
    ("audit.outcome", "结果", "Outcome"),
    ("audit.none", "没有记录。", "No entries."),
    ("finding.NEVER_CHECKED", "从未查询", "Never checked"),
    ("finding.NO_ROSTER", "未申报在职名单", "No roster"),
    (
        "finding.UNCHECKED_STAFF",
        "在职人员入职未查询",
        "Staff not checked at hire",
    ),
    (
        "finding.OVERDUE_RECHECK",
        "年度复查逾期",
        "Yearly re-check overdue",
    ),
    (
        "finding.HIT_STILL_ON_STAFF",
        "有记录人员仍在职",
        "Hit still on staff",
    ),
    (
        "finding.UNACKNOWLEDGED_ALERT",
        "预警未处理",
        "Alert not acknowledged",
    ),
    (
        "finding.EXCESS_QUERIES",
        "查询非本单位人员过多",
        "Excess queries",
    ),
    ("finding.ROSTER_CHURN", "名单频繁增删", "Roster churn"),
    (
        "meaning.NEVER_CHECKED",
        "已登记，但没有任何查询记录",
        "enrolled, and not one check on record",
    ),
    (
        "meaning.NO_ROSTER",
        "已登记，但从未申报在职名单",
        "enrolled, and never declared its staff",
    ),
    (
        "meaning.UNCHECKED_STAFF",
        "入职前（或入职宽限期内）未经查询的在职人员",
        "members with no check before (or within the grace period after) their hire date",
    ),
    (
        "meaning.OVERDUE_RECHECK",
        "上次查询早于复查周期的在职人员",
        "current members whose last check is older than the interval",
    ),
    (
        "meaning.HIT_STILL_ON_STAFF",
        "查询发现记录或收到预警后超过期限仍在职的人员",
        "members with a record found or an alert still on staff after the allowed days",
    ),
    (
        "meaning.UNACKNOWLEDGED_ALERT",
        "超过期限仍未处理的预警",
        "alerts not acknowledged within the allowed days",
    ),
    (
        "meaning.EXCESS_QUERIES",
        "对从未列入名单人员的查询超过与单位规模相应的阈值",
        "checks about people never on the roster, above the threshold for the unit's size",
    ),
    (
        "meaning.ROSTER_CHURN",
        "列入名单后不久即被移除的人员超过曾列入人员的一定比例",
        "people declared and removed again soon after, above a share of everyone declared",
    ),
    ("cli.error", "错误", "error"),
    ("report.title", "合规情况报告", "Compliance report"),
    ("report.as_of", "截至 {}", "as of {}"),
    (
        "report.page_title",
        "截至 {} 的合规情况报告",
        "Compliance report as of {}",
    ),
    (
        "report.lede",
        "根据此时的审计日志、在职名单和预警，判断密切接触未成年人的单位是否依照《未成年人保护法》第六十二条查询了从业人员。",
        "Whether units in close contact with minors checked their staff as the Minors Protection Law (art. 62) requires, judged from the audit log, the rosters and the alerts as they stood at this moment.",
    ),
    (
        "report.footer",
        "由 safehire 在审计条目 {} 处计算（哈希 <code>{}</code>）。基于同一日志复核：以相同筛选条件运行 <code>safehire oversight report --as-of {}</code>。",
        "Computed by safehire at audit entry {} (hash <code>{}</code>). To reproduce it against the same log: <code>safehire oversight report --as-of {}</code> with the same filters.",
    ),
    ("report.audit_entry", "第 {} 条 · 哈希", "entry {} · hash"),
    ("report.filters", "筛选条件", "Filters"),
    ("report.rules", "判定规则", "Rules"),
    ("report.all_regions", "全部行政区划", "all regions"),
    ("report.region", "行政区划 {}*", "region {}*"),
    ("report.all_industries", "全部行业", "all industries"),
    ("report.industry", "行业 {}", "industry {}"),
    ("report.sep", "，", ", "),
    ("report.rule_sep", "；", "; "),
    (
        "report.rule.recheck",
        "每 {} 天复查一次",
        "re-check every {} days",
    ),
    (
        "report.rule.grace",
        "新入职人员须在入职后 {} 天内查询",
        "check new staff by {} days after hire",
    ),
    (
        "report.rule.hit",
        "有记录的人员须在 {} 天内离职",
        "a member with a hit leaves the staff within {} days",
    ),
    (
        "report.rule.ack",
        "预警须在 {} 天内处理",
        "alerts acknowledged within {} days",
    ),
    (
        "report.rule.excess",
        "查询从未列入名单的人员：每名在职人员至多 {} 人次，或 {} 人次，取较大者",
        "people checked who were never on the roster: at most {} per current member or {}, whichever is more",
    ),
    ("report.share_of_units", "占单位的 {}%", "{}% of units"),
    ("report.no_units", "没有单位", "no units"),
    ("report.card.units", "单位", "units"),
    (
        "report.card.flagged",
        "存在问题的单位（{}）",
        "units with findings ({})",
    ),
    (
        "report.card.checked",
        "在职人员按时查询（{} / {}）",
        "of staff checked in time ({} of {})",
    ),
    ("report.col.finding", "问题", "Finding"),
    ("report.col.meaning", "含义", "Meaning"),
    ("report.col.industry", "行业", "Industry"),
    (
        "report.col.checked",
        "按时查询的<br>在职人员",
        "Staff checked<br>in time",
    ),
    (
        "report.col.findings",
        "问题及证据",
        "Findings and their evidence",
    ),
    (
        "report.chart.region",
        "各行政区划存在问题的单位",
        "Units with findings per region",
    ),
    (
        "report.chart.bureau",
        "各主管部门存在问题的单位",
        "Units with findings per supervising bureau",
    ),
    (
        "report.chart.region_title",
        "各行政区划的单位数与存在问题的单位数",
        "Units and units with findings per region",
    ),
    (
        "report.chart.bureau_title",
        "各主管部门的单位数与存在问题的单位数",
        "Units and units with findings per supervising bureau",
    ),
    (
        "report.no_bureau",
        "（无主管部门）",
        "(no supervising bureau)",
    ),
    ("report.chart.none", "没有单位。", "No units."),
    ("report.chart.units", "单位", "units"),
    (
        "report.chart.flagged",
        "存在问题的单位",
        "units with findings",
    ),
    ("report.chart.axis", "单位数", "number of units"),
    (
        "report.chart.bar",
        "{}：{} 个单位，其中 {} 个存在问题",
        "{}: {} units, {} with findings",
    ),
    ("report.chart.value", "{} / {}", "{} of {}"),
    (
        "report.chart.hidden",
        "仅显示存在问题单位最多的 {}；其余 {} {}，其中 {} 个存在问题。",
        "Showing the {} with the most units with findings; the other {} {}, {} of them with findings.",
    ),
    ("report.chart.group.one", "{} 组", "{} group"),
    ("report.chart.group.many", "{} 组", "{} groups"),
    ("report.chart.hold.one", "{} 组共有", "{} group holds"),
    ("report.chart.hold.many", "{} 组共有", "{} groups hold"),
    ("report.chart.unit.one", "{} 个单位", "{} unit"),
    ("report.chart.unit.many", "{} 个单位", "{} units"),
    (
        "report.flagged_heading",
        "存在问题的单位（{} / {}）",
        "Units with findings ({} of {})",
    ),
    (
        "report.none_flagged",
        "没有单位存在问题。",
        "No unit has a finding.",
    ),
    ("report.finding_count", "{} / {}", "{} of {}"),
    ("report.no_staff", "无在职人员", "no current staff"),
    (
        "report.text.head",
        "合规情况报告，截至 {}",
        "compliance report as of {}",
    ),
    ("report.text.audit_head", "审计日志位置", "audit head"),
    ("report.text.filters", "筛选条件", "filters"),
    ("report.text.rules", "判定规则", "rules"),
    (
        "report.text.flagged",
        "存在问题的单位：{} / {}",
        "units with findings: {} of {}",
    ),
    (
        "report.text.by_bureau",
        "按主管部门：",
        "by supervising bureau:",
    ),
    ("report.text.by_region", "按行政区划：", "by region:"),
    ("report.text.no_bureau", "（无主管部门）", "(no bureau)"),
    ("report.text.no_units", "（没有单位）", "(no units)"),
    (
        "report.text.group",
        "{} 个单位，其中 {} 个存在问题，在职人员按时查询 {}",
        "{} units, {} with findings, staff checked in time {}",
    ),
    (
        "report.text.totals",
        "合计：{} 个单位，其中 {} 个存在问题；在职人员按时查询 {}",
        "totals: {} units, {} with findings; staff checked in time {}",
    ),
    (
        "report.text.per_kind",
        "各类问题的单位数：{}",
        "units per finding: {}",
    ),
    (
        "report.written",
        "截至 {} 的报告（审计日志位置 {}）：{} 个单位，其中 {} 个存在问题；已写入 {}",
        "report as of {} (audit head {}): {} units, {} with findings; written to {}",
    ),
    ("report.and", "、", " and "),
    ("cli.check.check_id", "查询编号", "check id"),
    ("cli.check.checked_at", "查询时间", "checked at"),
    ("cli.check.registry_version", "数据版本", "registry version"),
    ("cli.check.scope", "查询范围", "scope"),
    ("cli.check.employer", "用人单位", "employer"),
    (
        "cli.check.needs_review",
        "证件与另一姓名下的记录相符：录用前请等待登记机关处理",
        "the document matches a record under another name: hold the hire until a registrar resolves it",
    ),
    (
        "cli.batch.summary",
        "共 {} 行：{} 行 NO_RECORD（未发现记录），{} 行 RECORD_FOUND（发现记录），{} 行 NEEDS_REVIEW（需复查），{} 行错误{}；结果文件 {}",
        "{} rows: {} NO_RECORD, {} RECORD_FOUND, {} NEEDS_REVIEW, {} errors{}; results in {}",
    ),
    (
        "cli.batch.unanswered",
        "，{} 行未获答复",
        ", {} not answered",
    ),
    (
        "cli.batch.incomplete",
        "批量查询未完成：{}；请加 --resume 重新运行",
        "the batch did not complete: {}; run again with --resume",
    ),
    (
        "cli.roster.applied",
        "{} 的在职名单：收到 {} 行，新增 {}，更新 {}，未变 {}，离职 {}，拒收 {}；在职 {} 人",
        "roster of {}: {} received, {} added, {} updated, {} unchanged, {} departed, {} rejected; {} current members",
    ),
    (
        "cli.roster.not_applied",
        "{} 的在职名单：未作任何更改，{} 行中有 {} 行被拒收（请更正，或加 --partial 只应用其余各行）；在职 {} 人",
        "roster of {}: nothing applied, {} of {} rows rejected (fix them, or --partial to apply the others); {} current members",
    ),
    (
        "cli.roster.row_error",
        "  第 {} 行：{}：{}",
        "  row {}: {}: {}",
    ),
    (
        "cli.roster.errors_truncated",
        "  …… 服务器只列出了前面的错误",
        "  … the server listed only its first errors",
    ),
    ("cli.roster.employer", "用人单位", "employer"),
    ("cli.roster.declared", "已申报", "declared"),
    ("cli.roster.yes", "是", "yes"),
    ("cli.roster.no", "否", "no"),
    ("cli.roster.current", "在职人数", "current members"),
    ("cli.roster.departed", "离职人数", "departed members"),
    ("cli.roster.last_replaced", "上次申报", "last replaced"),
    ("cli.roster.last_recheck", "上次复查", "last re-check"),
    ("cli.roster.interval", "复查周期", "interval"),
    ("cli.roster.days", "{} 天", "{} days"),
    (
        "cli.roster.due",
        "{} 人需年度复查",
        "{} members due for the yearly re-check",
    ),
    (
        "cli.roster.due_line",
        "  {}  入职 {}  上次查询 {}",
        "  {}  hired {}  last checked {}",
    ),
    ("cli.roster.truncated", "（列表已截断）", "(list truncated)"),
    ("cli.roster.never", "从未", "never"),
    (
        "cli.roster.rechecked",
        "已复查 {} 人：{} 人 NO_RECORD（未发现记录），{} 人 RECORD_FOUND（发现记录），{} 人 NEEDS_REVIEW（需复查）",
        "re-checked {} members: {} NO_RECORD, {} RECORD_FOUND, {} NEEDS_REVIEW",
    ),
    (
        "cli.roster.recheck_incomplete",
        "复查在 {} 人后中断：{}；请重新运行",
        "the re-check did not complete after {} members: {}; run it again",
    ),
    (
        "cli.registry.imported",
        "已导入 {}：新建 {}，更新 {}，未变 {}，拒收 {}；数据版本 {}",
        "imported {}: {} created, {} updated, {} unchanged, {} rejected; registry version {}",
    ),
    (
        "cli.registry.more",
        "  …… 另有 {} 行（见 --json）",
        "  … and {} more (see --json)",
    ),
    (
        "cli.alerts.more",
        "（还有更多预警；--after {}）",
        "(more alerts follow; --after {})",
    ),
    ("cli.alerts.count", "{} 条预警", "{} alerts"),
    (
        "cli.alerts.review_opened",
        "已开启复查案件 {}",
        "review case {} opened",
    ),
    (
        "cli.reviews.more",
        "（还有更多案件；--after {}）",
        "(more cases follow; --after {})",
    ),
    ("cli.reviews.count", "{} 件复查案件", "{} review cases"),
    ("cli.org.count", "{} 个单位", "{} organisations"),
    ("cli.audit.sequence", "序号", "sequence"),
    ("cli.audit.hash", "哈希", "hash"),
    ("cli.audit.at", "时间", "at"),
    (
        "cli.audit.ok",
        "审计链完整：已校验 {} 条",
        "audit chain OK: {} entries verified",
    ),
    (
        "cli.audit.tree_problem",
        "但默克尔树与之不符：{}",
        "but the Merkle tree does NOT match them: {}",
    ),
    (
        "cli.audit.unexplained",
        "日志无法解释：{}",
        "NOT EXPLAINED BY THE LOG: {}",
    ),
    ("cli.audit.head", "日志头 {} {}", "head {} {}"),
    (
        "cli.audit.broken",
        "审计链在第 {} 条处断裂：{}（此前 {} 条校验通过）",
        "audit chain BROKEN at entry {}: {} ({} entries before it verified)",
    ),
    (
        "industry.primary-secondary-school",
        "中小学",
        "primary-secondary-school",
    ),
    ("industry.kindergarten", "幼儿园", "kindergarten"),
    (
        "industry.off-campus-training",
        "校外培训机构",
        "off-campus-training",
    ),
    ("industry.childcare", "托育机构", "childcare"),
    (
        "industry.paediatric-medical",
        "儿科医疗机构",
        "paediatric-medical",
    ),
    ("industry.sports", "体育机构", "sports"),
    (
        "industry.welfare-institution",
        "儿童福利机构",
        "welfare-institution",
    ),
    ("industry.other", "其他", "other"),
    ("industry.not-applicable", "不适用", "not-applicable"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locales_choose_the_language_and_keys_are_unique() {
        assert_eq!(Lang::of_locale("zh_CN.UTF-8"), Lang::Zh);
        assert_eq!(Lang::of_locale("en_US.UTF-8"), Lang::En);
        assert_eq!(Lang::of_locale(""), Lang::En);
        assert_eq!(Lang::parse("en"), Lang::En);
        assert_eq!(Lang::parse(""), Lang::Zh);
        assert_eq!(Lang::Zh.t("nav.check"), "入职查询");
        assert_eq!(Lang::En.t("nav.check"), "Pre-hire check");
        assert_eq!(Lang::En.t("no.such.key"), "no.such.key");
        let mut keys: Vec<&str> = MESSAGES.iter().map(|(k, _, _)| *k).collect();
        keys.sort_unstable();
        let before = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), before, "a key appears twice in the catalogue");
        for (key, zh, en) in MESSAGES {
            assert_eq!(
                zh.matches("{}").count(),
                en.matches("{}").count(),
                "{key}: both languages take the same figures"
            );
        }
        assert_eq!(
            Lang::En.f("report.as_of", &[&"2026-11-24"]),
            "as of 2026-11-24"
        );
        assert_eq!(Lang::Zh.f("report.region", &[&"1506"]), "行政区划 1506*");
        assert_eq!(pad("check id", 10), "check id  ");
        assert_eq!(pad("查询编号", 10), "查询编号  ");
        for industry in crate::org::Industry::slugs().split(", ") {
            let key = format!("industry.{industry}");
            assert_eq!(Lang::En.t(&key), industry, "{key} is missing");
        }
        for finding in crate::oversight::Finding::ALL {
            for prefix in ["finding.", "meaning."] {
                let key = format!("{prefix}{}", finding.label());
                assert_ne!(Lang::Zh.t(&key), key, "{key} is missing");
            }
        }
    }
}
