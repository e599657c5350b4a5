# ctvl bash completion, generated from the Typer app by `make completions`. Do not edit.

_ctvl() {
    local cur prev path="" i w
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${COMP_WORDS[i]}"
        case "$path/$w" in
            "/cache") path="$path/cache" ;;
            "/cache/info") path="$path/info" ;;
            "/embed") path="$path/embed" ;;
            "/finetune") path="$path/finetune" ;;
            "/generate-report") path="$path/generate-report" ;;
            "/models") path="$path/models" ;;
            "/models/list") path="$path/list" ;;
            "/retrieve") path="$path/retrieve" ;;
            "/segment-organs") path="$path/segment-organs" ;;
            "/zeroshot") path="$path/zeroshot" ;;
        esac
    done
    local words="" values="" files=0
    case "$path" in
        "") words="cache embed finetune generate-report models retrieve segment-organs zeroshot --version --help"
            ;;
        "/cache") words="info --help"
            ;;
        "/cache/info") words="--help"
            ;;
        "/embed") words="--help"
            ;;
        "/finetune") words="--help"
            ;;
        "/generate-report") words="--help"
            ;;
        "/models") words="list --help"
            ;;
        "/models/list") words="--help"
            ;;
        "/retrieve") words="--help"
            ;;
        "/segment-organs") words="--help"
            ;;
        "/zeroshot") words="--help"
            ;;
    esac
    if [[ -n "$values" ]]; then COMPREPLY=($(compgen -W "$values" -- "$cur")); return 0; fi
    if [[ $files -eq 1 ]]; then COMPREPLY=($(compgen -f -- "$cur")); return 0; fi
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
    if [[ ${#COMPREPLY[@]} -eq 0 && "$cur" != -* ]]; then COMPREPLY=($(compgen -f -- "$cur")); fi
    return 0
}
complete -o default -o filenames -F _ctvl ctvl
