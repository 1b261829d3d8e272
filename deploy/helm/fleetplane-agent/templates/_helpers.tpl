{{- define "agent.name" -}}fleetplane-agent{{- end -}}
{{- /* Names of this release's cluster-scoped objects and of its Roles in rbac.namespaces.
       Every namespaced object of the chart has a fixed name, so one release per namespace: the
       release namespace names the release, also in a namespace several releases deliver into. */ -}}
{{- define "agent.clusterRole" -}}fleetplane-agent-{{ .Release.Namespace }}{{- end -}}
{{- define "agent.workloadsRole" -}}fleetplane-agent-{{ .Release.Namespace }}-workloads{{- end -}}
{{- define "agent.selector" -}}
app.kubernetes.io/name: fleetplane-agent
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end -}}
{{- define "agent.labels" -}}
app.kubernetes.io/name: fleetplane-agent
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
{{- end -}}
{{- /* config.delivery as given (empty dict when absent). */ -}}
{{- define "agent.delivery" -}}
{{- (.Values.config | default dict).delivery | default dict | toJson -}}
{{- end -}}
{{- /* "true" when the agent may create namespaces: config.delivery.createNamespaces, which
       defaults to true in the agent when unset, and never with rbac.scope=namespaces (the
       namespaces exist already: they hold the agent's Roles). One knob decides both the
       agent's behaviour and its RBAC rule, so they cannot disagree. */ -}}
{{- define "agent.createNamespaces" -}}
{{- $delivery := include "agent.delivery" . | fromJson -}}
{{- if and (eq .Values.rbac.scope "cluster") (or (not (hasKey $delivery "createNamespaces")) $delivery.createNamespaces) -}}true{{- end -}}
{{- end -}}
{{- /* rbac.namespaces, checked against the rules that keep the agent out of its own and the
       system namespaces, as a JSON list; empty with rbac.scope=cluster. */ -}}
{{- define "agent.rbacNamespaces" -}}
{{- if eq .Values.rbac.scope "cluster" -}}
{{- if .Values.rbac.namespaces -}}
{{- fail "rbac.namespaces is only read with rbac.scope=namespaces; with rbac.scope=cluster use config.delivery.allowedNamespaces" -}}
{{- end -}}
[]
{{- else -}}
{{- if not .Values.rbac.namespaces -}}
{{- fail "rbac.namespaces is empty: list the existing namespaces the hub may deliver workloads into (the agent gets a Role in each and may write nowhere else), or set rbac.scope=cluster to let it write in every namespace config.delivery allows" -}}
{{- end -}}
{{- $delivery := include "agent.delivery" . | fromJson -}}
{{- if hasKey $delivery "allowedNamespaces" -}}
{{- fail "config.delivery.allowedNamespaces is set by the chart from rbac.namespaces when rbac.scope=namespaces; remove it (or use rbac.scope=cluster)" -}}
{{- end -}}
{{- if $delivery.createNamespaces -}}
{{- fail "config.delivery.createNamespaces=true needs rbac.scope=cluster: with rbac.scope=namespaces the namespaces must exist (they hold the agent's Roles)" -}}
{{- end -}}
{{- $denied := hasKey $delivery "deniedNamespaces" | ternary $delivery.deniedNamespaces (list "kube-*" "fleetplane-system") -}}
{{- range $ns := .Values.rbac.namespaces -}}
{{- if eq $ns $.Release.Namespace -}}
{{- fail (printf "rbac.namespaces: %s is the agent's own namespace (it holds the agent's credential) and cannot be a delivery target" $ns) -}}
{{- end -}}
{{- range $pattern := $denied -}}
{{- if regexMatch (printf "^%s$" (regexQuoteMeta $pattern | replace "\\*" ".*" | replace "\\?" ".")) $ns -}}
{{- fail (printf "rbac.namespaces: %s is denied by config.delivery.deniedNamespaces (%s)" $ns $pattern) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- .Values.rbac.namespaces | uniq | toJson -}}
{{- end -}}
{{- end -}}
