package settle

import (
	"context"
	"maps"
	"slices"
	"time"

	"ihos"
	"ihos/insurance"
)

// StatementLine is the 3201 check of one insurance type on one day: the
// hospital's totals from insurance_settlements and the platform's verdict.
type StatementLine struct {
	Insutype    string `json:"insutype"`
	Count       int    `json:"count"`
	Total       int64  `json:"medfee_sumamt"` // fen
	Fund        int64  `json:"fund_pay_sumamt"`
	Account     int64  `json:"acct_pay"`
	Result      string `json:"stmt_rslt"`
	Description string `json:"stmt_rslt_dscr"`
	Balanced    bool   `json:"balanced"`
}

// Statement is the 3201 对总账 of one day (Asia/Shanghai) for the site
// (national platform) settlements; mobile payments are reconciled against
// the mobile centre's bill, not here.
type Statement struct {
	Day      string          `json:"day"`
	Balanced bool            `json:"balanced"`
	Lines    []StatementLine `json:"lines"`
}

// Statement sends 3201 for each insurance type with the day's settled site
// settlements (those cancelled since are left out, as the platform leaves
// them out); the two common types are always checked, so settlements the
// platform has and the hospital does not are found too.
func (s *Service) Statement(ctx context.Context, day string) (Statement, error) {
	if _, err := time.ParseInLocation("2006-01-02", day, ihos.Shanghai); err != nil {
		return Statement{}, ihos.Invalid(map[string]string{"day": "日期应为 yyyy-MM-dd"})
	}
	c, err := s.national()
	if err != nil {
		return Statement{}, err
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT insutype, COUNT(*), COALESCE(SUM(total), 0), COALESCE(SUM(fund_pay), 0), COALESCE(SUM(account_pay), 0)
		FROM insurance_settlements WHERE kind = ? AND channel = ? AND status = ? AND day = ? AND deleted_at IS NULL GROUP BY insutype`,
		KindSettle, ihos.ChannelInsuranceSite, StatusSettled, day)
	if err != nil {
		return Statement{}, ihos.Internal(err)
	}
	byType := map[string]*StatementLine{}
	for _, t := range []string{insurance.InsutypeEmployee, insurance.InsutypeResident} {
		byType[t] = &StatementLine{Insutype: t}
	}
	for rows.Next() {
		var l StatementLine
		if err := rows.Scan(&l.Insutype, &l.Count, &l.Total, &l.Fund, &l.Account); err != nil {
			rows.Close()
			return Statement{}, ihos.Internal(err)
		}
		byType[l.Insutype] = &l
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Statement{}, ihos.Internal(err)
	}
	st := Statement{Day: day, Balanced: true}
	for _, t := range slices.Sorted(maps.Keys(byType)) {
		l := byType[t]
		if l.Insutype == "" {
			continue
		}
		res, err := c.ReconcileTotals(ctx, insurance.CallOptions{}, insurance.StatementTotals{Insutype: l.Insutype, StmtBegndate: day, StmtEnddate: day,
			MedfeeSumamt: insurance.Yuan(l.Total), FundPaySumamt: insurance.Yuan(l.Fund), AcctPay: insurance.Yuan(l.Account), FixmedinsSetlCnt: l.Count})
		if err != nil {
			return Statement{}, err
		}
		l.Result, l.Description, l.Balanced = res.StmtRslt, res.StmtRsltDscr, res.Balanced()
		st.Balanced = st.Balanced && l.Balanced
		st.Lines = append(st.Lines, *l)
	}
	return st, nil
}
