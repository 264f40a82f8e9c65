# The report's pages (prh.steps.findings): what the run's tables say, in
# words with the rows they come from (findings.md, and its HTML at the top of
# the report), and the tables themselves, sortable.


rule findings:
    input:
        library("findings.py"),
        unpack(lambda wc: CFG.findings_inputs(wc.dataset)),
    output:
        md=findings_path("{dataset}"),
        html=report(
            report_page("{dataset}", "findings"),
            caption="../report/findings.rst",
            category="0. Findings",
            labels={"dataset": "{dataset}"},
        ),
    log:
        log_path("{dataset}", "findings"),
    conda:
        "../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        findings=CFG.findings_params(),
        statistics=STATISTICS_TABLES if CFG.calibrated else [],
        models=MODELS,
    script:
        "../scripts/findings.py"


rule report_tables:
    input:
        library("report_tables.py"),
        unpack(lambda wc: CFG.report_tables(wc.dataset)),
    output:
        **{
            t: report(
                report_page("{dataset}", t),
                caption="../report/tables.rst",
                category="6. Tables",
                subcategory=f"{t}",
                labels={"dataset": "{dataset}", "table": t},
            )
            for t in CFG.report_table_names()
        },
    log:
        log_path("{dataset}", "report_tables"),
    conda:
        "../envs/plots.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        tables=lambda wc: CFG.report_tables(wc.dataset),
    script:
        "../scripts/report_tables.py"
